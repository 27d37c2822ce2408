"""Qualification requirements: who may discover, preview and accept a HIT.

A requirement names a qualification type and a comparator. Requester-owned types are looked up in the
worker's grants; MTurk's system types (locale, approval rate, ...) in the worker's record, whose values
the Python API can set. ``ActionsGuarded`` says what a worker who fails the requirement may not do:
``Accept`` (default), ``PreviewAndAccept``, or ``DiscoverPreviewAndAccept`` (the HIT is hidden).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from server.sandbox.model import SandboxState, Worker, grant_key

LOCALE = "00000000000000000071"
NUMBER_HITS_APPROVED = "00000000000000000040"
PERCENT_ASSIGNMENTS_APPROVED = "000000000000000000L0"
ADULT = "00000000000000000060"
MASTERS_SANDBOX = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"
MASTERS = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"

SYSTEM_TYPES: dict[str, str] = {
    LOCALE: "Worker_Locale",
    NUMBER_HITS_APPROVED: "Worker_NumberHITsApproved",
    PERCENT_ASSIGNMENTS_APPROVED: "Worker_PercentAssignmentsApproved",
    ADULT: "Worker_Adult",
    MASTERS_SANDBOX: "Masters",
    MASTERS: "Masters",
}
# What a new worker holds unless the Python API says otherwise; absent types are "not held".
DEFAULT_SYSTEM_VALUES: dict[str, int] = {NUMBER_HITS_APPROVED: 0, PERCENT_ASSIGNMENTS_APPROVED: 100}


class Access(IntEnum):
    """How far a worker may go with a HIT; each level includes the ones below."""

    NONE = 0
    DISCOVER = 1
    PREVIEW = 2
    ACCEPT = 3


_GUARD_LIMIT = {
    "Accept": Access.PREVIEW,
    "PreviewAndAccept": Access.DISCOVER,
    "DiscoverPreviewAndAccept": Access.NONE,
}


@dataclass(frozen=True)
class Held:
    """The worker's value for one qualification type, or nothing held."""

    integer: int | None = None
    country: str | None = None
    subdivision: str | None = None


def held_value(state: SandboxState, worker: Worker, type_id: str) -> Held | None:
    if type_id == LOCALE:
        return Held(country=worker.country, subdivision=worker.subdivision)
    if type_id in SYSTEM_TYPES:
        if type_id in worker.system_values:
            value = worker.system_values[type_id]
        else:
            value = DEFAULT_SYSTEM_VALUES.get(type_id)
        return None if value is None else Held(integer=value)
    grant = state.grants.get(grant_key(type_id, worker.worker_id))
    if grant is None or grant.status != "Granted":
        return None
    return Held(integer=grant.integer_value)


def _locale_matches(held: Held, wanted: dict[str, Any]) -> bool:
    if held.country != wanted.get("Country"):
        return False
    subdivision = wanted.get("Subdivision")
    return subdivision is None or subdivision == held.subdivision


def satisfies(held: Held | None, requirement: dict[str, Any]) -> bool:
    comparator = requirement["Comparator"]
    if comparator == "Exists":
        return held is not None
    if comparator == "DoesNotExist":
        return held is None
    if held is None:
        return False
    if held.country is not None:
        locales: list[dict[str, Any]] = requirement.get("LocaleValues") or []
        matched = any(_locale_matches(held, wanted) for wanted in locales)
        return matched if comparator in ("EqualTo", "In") else not matched
    integers: list[int] = requirement.get("IntegerValues") or []
    value = held.integer if held.integer is not None else 0
    if comparator == "In":
        return value in integers
    if comparator == "NotIn":
        return value not in integers
    if not integers:
        return False
    target = integers[0]
    checks = {
        "LessThan": value < target,
        "LessThanOrEqualTo": value <= target,
        "GreaterThan": value > target,
        "GreaterThanOrEqualTo": value >= target,
        "EqualTo": value == target,
        "NotEqualTo": value != target,
    }
    return checks[comparator]


def guard_of(requirement: dict[str, Any]) -> str:
    guarded = requirement.get("ActionsGuarded")
    if isinstance(guarded, str):
        return guarded
    return "PreviewAndAccept" if requirement.get("RequiredToPreview") else "Accept"


def access(state: SandboxState, worker: Worker, requirements: list[dict[str, Any]]) -> tuple[Access, str | None]:
    """The worker's access to a HIT with these requirements, and the first requirement failed."""
    level, failed = Access.ACCEPT, None
    for requirement in requirements:
        type_id = requirement["QualificationTypeId"]
        if satisfies(held_value(state, worker, type_id), requirement):
            continue
        limit = _GUARD_LIMIT.get(guard_of(requirement), Access.PREVIEW)
        if limit < level:
            level = limit
        failed = failed or type_id
    return level, failed


def type_name(state: SandboxState, type_id: str) -> str:
    if type_id in SYSTEM_TYPES:
        return SYSTEM_TYPES[type_id]
    qualification_type = state.qualification_types.get(type_id)
    return qualification_type.name if qualification_type else type_id
