"""The sandbox's state: every record MTurk keeps for one requester, as pydantic models.

The whole state is one JSON document (see ``persistence``). Times are epoch seconds; money is integer
cents. An assignment's life is one enum with one guarded transition function.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

INITIAL_FUNDS_CENTS = 10_000_00
STATE_VERSION = 1


class AssignmentStatus(StrEnum):
    """MTurk's three public statuses plus the three a requester never sees."""

    ACCEPTED = "Accepted"  # a worker is working on it
    SUBMITTED = "Submitted"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    RETURNED = "Returned"  # the worker gave it back; the slot is free again
    ABANDONED = "Abandoned"  # the worker ran out of AssignmentDurationInSeconds; the slot is free again


_TRANSITIONS: dict[AssignmentStatus, frozenset[AssignmentStatus]] = {
    AssignmentStatus.ACCEPTED: frozenset(
        {AssignmentStatus.SUBMITTED, AssignmentStatus.RETURNED, AssignmentStatus.ABANDONED}
    ),
    AssignmentStatus.SUBMITTED: frozenset({AssignmentStatus.APPROVED, AssignmentStatus.REJECTED}),
    AssignmentStatus.REJECTED: frozenset({AssignmentStatus.APPROVED}),  # ApproveAssignment(OverrideRejection)
    AssignmentStatus.APPROVED: frozenset(),
    AssignmentStatus.RETURNED: frozenset(),
    AssignmentStatus.ABANDONED: frozenset(),
}

REQUESTER_VISIBLE = frozenset({AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED, AssignmentStatus.REJECTED})
HOLDS_A_SLOT = frozenset(
    {
        AssignmentStatus.ACCEPTED,
        AssignmentStatus.SUBMITTED,
        AssignmentStatus.APPROVED,
        AssignmentStatus.REJECTED,
    }
)


class IllegalTransition(Exception):
    def __init__(self, current: AssignmentStatus, wanted: AssignmentStatus):
        allowed = ", ".join(sorted(_TRANSITIONS[current])) or "nothing"
        super().__init__(f"Expected an assignment that may become {wanted}, got {current} (may become {allowed})")
        self.current = current
        self.wanted = wanted


class HITType(BaseModel):
    hit_type_id: str
    hit_group_id: str
    title: str
    description: str
    keywords: str = ""
    reward_cents: int
    assignment_duration: int
    auto_approval_delay: int
    qualification_requirements: list[dict[str, Any]] = Field(default_factory=list)


class HIT(BaseModel):
    hit_id: str
    hit_type_id: str
    question: str
    creation_time: float
    expiration: float
    max_assignments: int
    requester_annotation: str | None = None
    charge_cents: int  # reward + fee, held per assignment slot
    reviewing: bool = False
    disposed: bool = False
    assignment_ids: list[str] = Field(default_factory=list)


class Assignment(BaseModel):
    assignment_id: str
    hit_id: str
    worker_id: str
    status: AssignmentStatus = AssignmentStatus.ACCEPTED
    accept_time: float
    deadline: float
    submit_time: float | None = None
    auto_approval_time: float | None = None
    approval_time: float | None = None
    rejection_time: float | None = None
    answer: str | None = None
    requester_feedback: str | None = None
    ended_time: float | None = None  # when it was returned or abandoned
    # In the turkSubmitTo given to this assignment's page only: a submit carrying it comes from that page.
    submit_key: str = Field(default_factory=lambda: secrets.token_urlsafe(18))

    def move_to(self, wanted: AssignmentStatus) -> None:
        if wanted not in _TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, wanted)
        self.status = wanted


class QualificationType(BaseModel):
    qualification_type_id: str
    creation_time: float
    name: str
    description: str
    keywords: str = ""
    status: str
    test: str | None = None
    answer_key: str | None = None
    test_duration: int | None = None
    retry_delay: int | None = None
    auto_granted: bool = False
    auto_granted_value: int = 1


class Grant(BaseModel):
    """A requester-owned qualification held by one worker."""

    qualification_type_id: str
    worker_id: str
    integer_value: int
    grant_time: float
    status: str = "Granted"  # or "Revoked"


class Worker(BaseModel):
    """A worker's attributes that MTurk owns: locale and the system qualification values."""

    worker_id: str
    country: str = "US"
    subdivision: str | None = None
    system_values: dict[str, int | None] = Field(default_factory=dict)  # None: explicitly not held


class Bonus(BaseModel):
    worker_id: str
    assignment_id: str
    hit_id: str
    amount_cents: int
    fee_cents: int
    reason: str
    grant_time: float


class UsedToken(BaseModel):
    """A UniqueRequestToken already processed, with what it produced (e.g. the HIT id)."""

    operation: str
    result_id: str
    time: float


class Notification(BaseModel):
    worker_id: str
    subject: str
    message_text: str
    time: float


class SandboxState(BaseModel):
    version: int = STATE_VERSION
    funds_cents: int = INITIAL_FUNDS_CENTS
    hit_types: dict[str, HITType] = Field(default_factory=dict)
    hits: dict[str, HIT] = Field(default_factory=dict)
    assignments: dict[str, Assignment] = Field(default_factory=dict)
    qualification_types: dict[str, QualificationType] = Field(default_factory=dict)
    grants: dict[str, Grant] = Field(default_factory=dict)  # key: "<type id>/<worker id>"
    workers: dict[str, Worker] = Field(default_factory=dict)
    blocks: dict[str, str] = Field(default_factory=dict)  # worker id -> reason
    bonuses: list[Bonus] = Field(default_factory=list)
    tokens: dict[str, UsedToken] = Field(default_factory=dict)  # key: "<scope>/<token>"
    notifications: list[Notification] = Field(default_factory=list)
    # worker id -> hash of the worker-site session (browser) that picked it (see ``worker_sessions``)
    worker_sessions: dict[str, str] = Field(default_factory=dict)

    def worker(self, worker_id: str) -> Worker:
        """The worker's record, created with MTurk's defaults on first sight."""
        record = self.workers.get(worker_id)
        if record is None:
            record = self.workers[worker_id] = Worker(worker_id=worker_id)
        return record


def grant_key(qualification_type_id: str, worker_id: str) -> str:
    return f"{qualification_type_id}/{worker_id}"
