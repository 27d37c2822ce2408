"""Persistence: SQLModel tables and the one async Store API. The only package that talks SQL."""

from server.store import hits as _hit_tables  # noqa: F401 (registers the HIT manager's tables)
from server.store import leases as _lease_tables  # noqa: F401 (registers the instance table)
from server.store import prolific as _prolific_tables  # noqa: F401 (registers the Prolific records)
from server.store import review as _review_tables  # noqa: F401 (registers the review tables)
from server.store.models import (
    AgentRow,
    Conversation,
    EventRow,
    MessageRow,
    OnboardingResult,
    TaskRun,
    WorkerRow,
    WorldData,
)
from server.store.store import DuplicateMessage, Store

__all__ = [
    "AgentRow",
    "Conversation",
    "DuplicateMessage",
    "EventRow",
    "MessageRow",
    "OnboardingResult",
    "Store",
    "TaskRun",
    "WorkerRow",
    "WorldData",
]
