"""What a requester sets on `parley run` over the task's own declaration: HIT count, reward, timing, caps and
qualifications.

The flags are checked here, before anything is written or published, against MTurk's own limits; they
travel with the run (its row's options, under `OVERRIDES`), so every server that builds the run's task
builds it with them (server/tasks.py applies them).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from worlds.base import Qualifications, Task

OVERRIDES = "_parley"  # the key of a run's options that carries its flags (never a make_task() option)
MIN_REWARD = Decimal("0.01")  # MTurk refuses a smaller reward
MIN_SECONDS, MAX_SECONDS = 30, 365 * 24 * 3600  # MTurk's bounds on a HIT's lifetime and assignment duration
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LOCALE = re.compile(r"([A-Z]{2})(?:-([A-Z0-9]{1,3}))?")
COMPARATORS = ("LessThan", "LessThanOrEqualTo", "GreaterThan", "GreaterThanOrEqualTo", "EqualTo", "NotEqualTo",
               "Exists", "DoesNotExist", "In", "NotIn")
GUARDS = ("Accept", "PreviewAndAccept", "DiscoverPreviewAndAccept")


class FlagError(ValueError):
    """A flag's value MTurk or Parley would refuse; the message names the flag and what to give instead."""


def seconds(text: str, flag: str) -> int:
    """"90", "90s", "30m", "4h" or "2d" as seconds, within MTurk's 30 s .. 365 days."""
    found = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    if not found:
        raise FlagError(f"{flag} {text!r}: give a duration such as 90s, 30m, 4h or 2d")
    value = int(found.group(1)) * _UNITS[found.group(2) or "s"]
    if not MIN_SECONDS <= value <= MAX_SECONDS:
        raise FlagError(f"{flag} {text!r}: MTurk accepts 30 seconds to 365 days")
    return value


def reward(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise FlagError(f"--reward {text!r}: give an amount in US dollars, e.g. 0.05") from None
    if value < 0:
        raise FlagError(f"--reward {text}: a reward cannot be negative")
    if value < MIN_REWARD:
        raise FlagError(f"--reward {text}: MTurk's smallest reward is $0.01 (pay a bonus for more on top)")
    if value != value.quantize(Decimal("0.01")):
        raise FlagError(f"--reward {text}: MTurk pays whole cents, e.g. 0.05")
    return value


def locales(values: list[str]) -> tuple[str, ...]:
    """"US", "US-CA", or several comma-separated; checked as MTurk's LocaleValues (ISO 3166 codes)."""
    found: list[str] = []
    for value in values:
        for part in value.split(","):
            code = part.strip().upper()
            if not code:
                continue
            if not _LOCALE.fullmatch(code):
                raise FlagError(f"--locale {part!r}: give an ISO country code (US) or country-subdivision (US-CA)")
            found.append(code)
    if len(found) > 30:
        raise FlagError(f"--locale: MTurk accepts at most 30 locales in one requirement (got {len(found)})")
    return tuple(dict.fromkeys(found))


def requirement(text: str) -> dict[str, Any]:
    """A custom qualification requirement in MTurk's own shape, from JSON."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagError(f"--qualification {text!r}: not JSON ({exc.msg})") from None
    check_requirement(value, "--qualification")
    return dict(value)


def check_requirement(value: Any, where: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("QualificationTypeId"), str):
        raise FlagError(f"{where}: a requirement is an object with a QualificationTypeId, e.g. "
                        '{"QualificationTypeId": "3X...", "Comparator": "Exists"}')
    if value.get("Comparator") not in COMPARATORS:
        raise FlagError(
            f"{where}: Comparator must be one of {', '.join(COMPARATORS)} (got {value.get('Comparator')!r})"
        )
    if "ActionsGuarded" in value and value["ActionsGuarded"] not in GUARDS:
        raise FlagError(f"{where}: ActionsGuarded must be one of {', '.join(GUARDS)}")
    unknown = set(value) - {"QualificationTypeId", "Comparator", "IntegerValues", "LocaleValues", "RequiredToPreview",
                            "ActionsGuarded"}
    if unknown:
        raise FlagError(f"{where}: MTurk's QualificationRequirement has no {', '.join(sorted(unknown))}")


@dataclass(frozen=True)
class RunFlags:
    """The flags given to `parley run`; None (or empty) keeps the task's own declaration."""

    hits: int | None = None
    assignments: int | None = None
    reward: Decimal | None = None
    conversations: int | None = None
    lifetime_s: int | None = None
    assignment_duration_s: int | None = None
    max_conversations: int | None = None
    per_worker: int | None = None
    locales: tuple[str, ...] | None = None
    min_approval_rate: int | None = None
    min_approved_hits: int | None = None
    masters: bool = False
    allow_list: tuple[str, ...] = ()
    block_list: tuple[str, ...] = ()
    custom: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def check(self) -> None:
        """Refuse values MTurk would refuse (or that make no run), naming the flag."""
        positive = {"--hits": self.hits, "--conversations": self.conversations,
                    "--max-conversations": self.max_conversations, "--per-worker": self.per_worker}
        for flag, value in positive.items():
            if value is not None and value < 1:
                raise FlagError(f"{flag} {value}: give 1 or more")
        if self.assignments is not None and self.assignments < 1:
            raise FlagError(f"--assignments {self.assignments}: MTurk needs at least one assignment per HIT")
        if self.min_approval_rate is not None and not 0 <= self.min_approval_rate <= 100:
            raise FlagError(f"--min-approval-rate {self.min_approval_rate}: a percentage, 0..100")
        if self.min_approved_hits is not None and self.min_approved_hits < 0:
            raise FlagError(f"--min-approved-hits {self.min_approved_hits}: give 0 or more")
        both = set(self.allow_list) & set(self.block_list)
        if both:
            raise FlagError(f"workers {', '.join(sorted(both))} are on both the allow list and the block list")

    def to_options(self) -> dict[str, Any]:
        """The flags as JSON for the run's options (only those given)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or value == () or value is False:
                continue
            values[f.name] = str(value) if isinstance(value, Decimal) else (
                list(value) if isinstance(value, tuple) else value)
        return values

    def options(self) -> dict[str, Any]:
        """The run's options carrying these flags ({} when none is given)."""
        given = self.to_options()
        return {OVERRIDES: given} if given else {}

    @classmethod
    def from_options(cls, values: dict[str, Any]) -> RunFlags:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise FlagError(f"the run's flags name {', '.join(sorted(unknown))}, which this Parley does not know")
        given: dict[str, Any] = dict(values)
        if "reward" in given:
            given["reward"] = Decimal(str(given["reward"]))
        for name in ("locales", "allow_list", "block_list"):
            if name in given:
                given[name] = tuple(given[name])
        if "custom" in given:
            given["custom"] = tuple(dict(r) for r in given["custom"])
        return cls(**given)

    def apply(self, task: Task) -> Task:
        """A copy of the task with these flags over its declaration (the task itself is left as it is: a
        module's `task` may serve several runs)."""
        changed = copy.copy(task)
        if self.reward is not None:
            changed.reward = float(self.reward)
        caps: dict[str, int] = {}
        if self.conversations is not None:
            caps["target_conversations"] = self.conversations
        elif self.hits is not None:  # -nh alone: as many conversations as the HITs can fill
            caps["target_conversations"] = max(1, math.ceil(self.hits / len(task.roles)))
        if self.max_conversations is not None:
            caps["max_conversations"] = self.max_conversations
        if self.per_worker is not None:
            caps["per_worker_total"] = self.per_worker
        changed.caps = dataclasses.replace(task.caps, **caps)
        if self.lifetime_s is not None:
            changed.hit_lifetime_s = self.lifetime_s
        if self.assignment_duration_s is not None:
            changed.assignment_duration_s = self.assignment_duration_s
        changed.qualifications = self.qualifications(task.qualifications)
        return changed

    def qualifications(self, declared: Qualifications) -> Qualifications:
        """The task's qualifications with the flags' over them (lists given by flags add to the task's)."""
        return dataclasses.replace(
            declared,
            locales=self.locales if self.locales is not None else declared.locales,
            min_approval_rate=self.min_approval_rate if self.min_approval_rate is not None
            else declared.min_approval_rate,
            min_approved_hits=self.min_approved_hits if self.min_approved_hits is not None
            else declared.min_approved_hits,
            masters=self.masters or declared.masters,
            allow_list=tuple(dict.fromkeys((*declared.allow_list, *self.allow_list))),
            block_list=tuple(dict.fromkeys((*declared.block_list, *self.block_list))),
            custom=(*declared.custom, *self.custom),
        )


def check_task(task: Task) -> None:
    """Refuse a task (as declared, or with flags applied) whose HIT settings MTurk would refuse."""
    if Decimal(str(task.reward)) < MIN_REWARD:
        raise FlagError(f"task {task.name}: reward ${task.reward} is below MTurk's smallest, $0.01 (--reward)")
    for name, value in (("hit_lifetime_s", task.hit_lifetime_s), ("assignment_duration_s", task.assignment_duration_s)):
        if value and not MIN_SECONDS <= value <= MAX_SECONDS:
            raise FlagError(f"task {task.name}: {name} {value} is outside MTurk's 30 s .. 365 days")
    quals = task.qualifications
    if quals.locales is not None:
        locales(list(quals.locales))
    for index, custom in enumerate(quals.custom):
        check_requirement(custom, f"task {task.name}: qualifications.custom[{index}]")
