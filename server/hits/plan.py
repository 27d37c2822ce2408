"""Pure rules of publishing: tokens, fees, the HIT type, qualification requirements, how many HITs to keep open.

Nothing here talks to MTurk or the database, so each rule is testable on its own.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from xml.sax.saxutils import escape

from worlds.base import Qualifications, Task

LOCALE = "00000000000000000071"
PERCENT_APPROVED = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
MASTERS_LIVE = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"
MASTERS_SANDBOX = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"  # MTurk's sandbox (and Parley's built-in one)
DEFAULT_LOCALES = ("US",)  # on live MTurk, unless the task or `parley run --locale` says otherwise
DEFAULT_APPROVAL_RATE = 95
FEE_PERCENT = 20  # MTurk's commission on rewards and bonuses
LARGE_HIT_FEE_PERCENT = 40  # on the reward of HITs with 10 or more assignments
LARGE_HIT = 10
MAX_FORM_ASSIGNMENTS = LARGE_HIT - 1  # Parley keeps form HITs in the 20% band
HIDE = "DiscoverPreviewAndAccept"  # a worker who fails the requirement does not even see the HIT

EXTERNAL_QUESTION = (
    '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
    '2006-07-14/ExternalQuestion.xsd"><ExternalURL>{url}</ExternalURL><FrameHeight>{height}</FrameHeight>'
    "</ExternalQuestion>"
)


def hit_token(run_id: str, slot: int) -> str:
    """The UniqueRequestToken of a run's slot: the same on every retry, different for every slot (<= 64)."""
    return "parley-" + hashlib.sha256(f"hit:{run_id}:{slot}".encode()).hexdigest()[:48]


def bonus_token(assignment_id: str, key: str) -> str:
    return "parley-" + hashlib.sha256(f"bonus:{assignment_id}:{key}".encode()).hexdigest()[:48]


def cents(amount: float | str | Decimal) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def dollars(amount_cents: int) -> str:
    return f"{amount_cents // 100}.{amount_cents % 100:02d}"


def form_token(run_id: str, item_id: str, attempt: int = 0) -> str:
    """The UniqueRequestToken of a form run's item: one HIT per item, the same on every retry (<= 64).

    `attempt` counts the item's earlier HITs that cost nothing: refused by MTurk (`failed`: never made) or
    closed with nobody having worked them (`expired`).
    """
    return "parley-" + hashlib.sha256(f"form:{run_id}:{item_id}:{attempt}".encode()).hexdigest()[:48]


def fee_cents(amount_cents: int, assignments: int = 1) -> int:
    """MTurk's commission on one assignment's reward (or one bonus): 20% (40% on a HIT of 10+ assignments),
    rounded half up, at least one cent."""
    percent = LARGE_HIT_FEE_PERCENT if assignments >= LARGE_HIT else FEE_PERCENT
    return max(1, (amount_cents * percent + 50) // 100)


def charge_cents(reward_cents: int, assignments: int = 1) -> int:
    """What a HIT may cost: (reward + fee) for each of its assignments."""
    return (reward_cents + fee_cents(reward_cents, assignments)) * assignments


def external_question(public_url: str, run_id: str, frame_height: int = 0) -> str:
    url = f"{public_url.rstrip('/')}/task/{run_id}"
    return EXTERNAL_QUESTION.format(url=escape(url), height=frame_height)


@dataclass(frozen=True)
class Gates:
    """Qualification type ids that hide a HIT from a worker who holds them."""

    soft_block: str
    onboarding_failed: str | None  # None when the task has no onboarding
    at_cap: str  # this run's per-worker caps reached
    block_list: str | None = None  # granted to the run's block list
    allow_list: str | None = None  # granted to the run's allow list: an Exists requirement


def locale_value(code: str) -> dict[str, str]:
    """"US-CA" as MTurk's {"Country": "US", "Subdivision": "CA"}."""
    country, _, subdivision = code.partition("-")
    return {"Country": country, **({"Subdivision": subdivision} if subdivision else {})}


NOTHING_DECLARED = Qualifications()


def requirements(
    gates: Gates, *, live: bool, declared: Qualifications = NOTHING_DECLARED
) -> list[dict[str, Any]]:
    """The HIT type's QualificationRequirements: what the task (or `parley run`'s flags) declares, with
    Parley's defaults where it declares nothing (locale US and 95% approval, on live MTurk only); then
    Parley's own gates (allow list as Exists; soft block, onboarding failed, per-worker cap and block list as
    DoesNotExist). Every one hides the HIT from a worker who fails it."""
    reqs: list[dict[str, Any]] = []
    locales = declared.locales if declared.locales is not None else (DEFAULT_LOCALES if live else ())
    rate = declared.min_approval_rate if declared.min_approval_rate is not None else (
        DEFAULT_APPROVAL_RATE if live else 0)
    if locales:
        reqs.append({
            "QualificationTypeId": LOCALE, "Comparator": "In",
            "LocaleValues": [locale_value(c) for c in locales], "ActionsGuarded": HIDE,
        })
    if rate:
        reqs.append({
            "QualificationTypeId": PERCENT_APPROVED, "Comparator": "GreaterThanOrEqualTo",
            "IntegerValues": [rate], "ActionsGuarded": HIDE,
        })
    if declared.min_approved_hits:
        reqs.append({
            "QualificationTypeId": NUMBER_APPROVED, "Comparator": "GreaterThanOrEqualTo",
            "IntegerValues": [declared.min_approved_hits], "ActionsGuarded": HIDE,
        })
    if declared.masters:
        reqs.append({"QualificationTypeId": MASTERS_LIVE if live else MASTERS_SANDBOX, "Comparator": "Exists",
                     "ActionsGuarded": HIDE})
    reqs += [dict(custom) for custom in declared.custom]
    if gates.allow_list:
        reqs.append({"QualificationTypeId": gates.allow_list, "Comparator": "Exists", "ActionsGuarded": HIDE})
    for type_id in (gates.soft_block, gates.onboarding_failed, gates.at_cap, gates.block_list):
        if type_id:
            reqs.append({"QualificationTypeId": type_id, "Comparator": "DoesNotExist", "ActionsGuarded": HIDE})
    return reqs


def hit_type_params(
    task: Task, reward_cents: int, *, duration_s: int, auto_approval_s: int, reqs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "Title": task.title[:128],
        "Description": task.description[:2000],
        "Keywords": ", ".join(task.keywords)[:1000],
        "Reward": dollars(reward_cents),
        "AssignmentDurationInSeconds": duration_s,
        "AutoApprovalDelayInSeconds": auto_approval_s,
        "QualificationRequirements": reqs,
    }


@dataclass(frozen=True)
class Need:
    """What a run still needs, in conversations and in humans already on their way to one."""

    target: int
    completed: int
    live_conversations: int
    humans_waiting: int  # joined, onboarding or waiting: each will fill a slot without a new HIT
    roles: int
    max_conversations: int


# Top-up publishes progressively: never more than this many open HITs per run at once, whatever the caps.
MAX_OPEN_HITS = 1000


def open_target(need: Need, overbook: float) -> int:
    """HITs to keep open: min(global cap x roles, remaining human slots x overbook, MAX_OPEN_HITS), never
    negative."""
    remaining = max(0, need.target - need.completed - need.live_conversations)
    slots = max(0, remaining * need.roles - need.humans_waiting)
    return min(need.max_conversations * need.roles, math.ceil(slots * overbook), MAX_OPEN_HITS)
