"""The compensation records' table (`parley compensate`), apart from their store API (server/store/compensations.py)
so that the HIT store's spend queries read it without importing that API."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from server.states import CompensationStatus
from server.store.models import now


class CompensationRecord(SQLModel, table=True):
    """A one-assignment HIT that pays one worker (`parley compensate`): only they see it; paid on submit.

    status: a `CompensationStatus` (server/states.py says what each means).
    """

    __tablename__ = "mturk_compensation"
    token: str = Field(primary_key=True, max_length=64)  # the HIT's UniqueRequestToken
    run_id: str = Field(max_length=64, index=True)  # whose budget pays it
    worker_id: str = Field(max_length=128)
    amount_cents: int
    fee_cents: int
    reason: str = Field(max_length=1024)
    hit_id: str = Field(default="", max_length=64)
    assignment_id: str = Field(default="", max_length=128)
    status: str = Field(default=CompensationStatus.CREATING, max_length=16)  # a CompensationStatus
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)


_C = CompensationStatus
COMPENSATION_LIVE = (_C.CREATING, _C.OPEN)  # may still cost: its charge is reserved
COMPENSATION_FREE = (_C.EXPIRED, _C.FAILED)  # cost nothing
_COMP = CompensationRecord.__table__  # type: ignore[attr-defined]
COMPENSATION_TABLE = _COMP  # what the spend queries of server/store/hits.py and review.py read
