"""The Prolific emulator's state: one workspace's studies, submissions, bulk bonuses, participant groups and
balance, as Prolific's API shows them. Money is integer minor units (pence / cents), as Prolific's is."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

WORKSPACE_ID = "parley-builtin-workspace"
USER_ID = "parley-builtin-researcher"
CURRENCY = "GBP"
# Prolific's service fee on rewards and bonuses, and the VAT charged on that fee (see docs/prolific.md).
FEE_PERCENT = 42.8
VAT_PERCENT = 20.0


class StudyStatus(StrEnum):
    UNPUBLISHED = "UNPUBLISHED"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    AWAITING_REVIEW = "AWAITING REVIEW"
    COMPLETED = "COMPLETED"


class SubmissionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    AWAITING_REVIEW = "AWAITING REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    RETURNED = "RETURNED"
    TIMED_OUT = "TIMED-OUT"


# Places a submission holds: a returned or timed-out one gives its place back.
HOLDS_PLACE = frozenset({
    SubmissionStatus.ACTIVE, SubmissionStatus.AWAITING_REVIEW, SubmissionStatus.APPROVED, SubmissionStatus.REJECTED,
})


class CompletionCode(BaseModel):
    code: str
    code_type: str = "COMPLETED"
    actions: list[dict[str, Any]] = Field(default_factory=list)
    actor: str = "participant"


class Study(BaseModel):
    id: str
    name: str
    internal_name: str = ""
    description: str
    external_study_url: str
    prolific_id_option: str = "url_parameters"
    completion_codes: list[CompletionCode]
    total_available_places: int
    estimated_completion_time: int  # minutes
    maximum_allowed_time: int  # minutes
    reward: int  # minor units per place
    device_compatibility: list[str] = Field(default_factory=lambda: ["desktop"])
    filters: list[dict[str, Any]] = Field(default_factory=list)
    status: StudyStatus = StudyStatus.UNPUBLISHED
    date_created: float
    published_at: float | None = None

    def view(self, places_taken: int) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"date_created", "published_at"})
        data.update(
            places_taken=places_taken, date_created=iso(self.date_created),
            published_at=iso(self.published_at) if self.published_at else None,
            workspace=WORKSPACE_ID, researcher={"id": USER_ID},
        )
        return data


class Submission(BaseModel):
    id: str  # the SESSION_ID the study URL carries
    study_id: str
    participant_id: str
    status: SubmissionStatus = SubmissionStatus.ACTIVE
    started_at: float
    completed_at: float | None = None
    study_code: str | None = None
    rejection_category: str | None = None
    message: str | None = None
    bonus_payments: list[int] = Field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "study_id": self.study_id, "participant_id": self.participant_id,
            "status": self.status.value, "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at) if self.completed_at else None,
            "study_code": self.study_code, "is_complete": self.completed_at is not None,
            "return_requested": None, "bonus_payments": list(self.bonus_payments),
        }


class BulkBonus(BaseModel):
    id: str
    study: str
    rows: list[tuple[str, int]]  # (submission or participant id as given, amount in minor units)
    amount: int
    fees: int
    vat: int
    created_at: float
    times_paid: int = 0  # Prolific's pay is not idempotent: each call pays again

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "study": self.study, "amount": self.amount, "fees": self.fees, "vat": self.vat,
            "total_amount": self.amount + self.fees + self.vat,
        }


class Group(BaseModel):
    id: str
    name: str
    participant_ids: list[str] = Field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "workspace_id": WORKSPACE_ID,
            "participant_count": len(self.participant_ids),
        }


class ProlificState(BaseModel):
    funds: int = 100_000_00  # deposited, minor units
    studies: dict[str, Study] = Field(default_factory=dict)
    submissions: dict[str, Submission] = Field(default_factory=dict)
    bonuses: dict[str, BulkBonus] = Field(default_factory=dict)
    groups: dict[str, Group] = Field(default_factory=dict)
    counter: int = 0

    def new_id(self) -> str:
        """Prolific's ids are 24 hex digits (MongoDB ObjectIds)."""
        self.counter += 1
        return f"{0x5A17E000 + self.counter:024x}"

    def taken(self, study_id: str) -> int:
        return sum(1 for s in self.submissions.values() if s.study_id == study_id and s.status in HOLDS_PLACE)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
