"""Compensation records (`parley compensate`): one per one-assignment HIT that pays one worker.

Kept apart from the HIT records so no run's top-up or sweep counts them; their money is in the run's spend
(server/store/hits.py reads this table for the budget check).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select, update

from server.states import CompensationStatus
from server.store.compensation_table import COMPENSATION_TABLE as _COMP
from server.store.compensation_table import CompensationRecord
from server.store.hits import BudgetExceeded, HitStore
from server.store.models import now

__all__ = ["CompensationRecord", "CompensationStore"]


class CompensationStore:
    """Async API over the compensation records; the budget check is the HIT store's, in one transaction."""

    def __init__(self, hit_store: HitStore) -> None:
        self.hit_store = hit_store

    async def reserve(self, record: CompensationRecord) -> CompensationRecord:
        """Record a compensation before MTurk is asked; the existing record if its token was seen. Checks the
        run's budget in the same transaction."""
        existing = await self.get(record.token)
        if existing is not None:
            return existing
        async with self.hit_store.store.transaction() as conn:
            budget = await self.hit_store.run_budget_cents(conn, record.run_id)
            spent = await self.hit_store.run_spend_cents(conn, record.run_id)
            wanted = record.amount_cents + record.fee_cents
            if budget and spent + wanted > budget:
                raise BudgetExceeded(record.run_id, spent, wanted, budget)
            await conn.execute(insert(_COMP).values(**record.model_dump()))
        return record

    async def get(self, token: str) -> CompensationRecord | None:
        row = await self.hit_store.store.fetch_one(select(_COMP).where(_COMP.c.token == token))
        return CompensationRecord.model_validate(row._mapping) if row else None

    async def listed(
        self, run_id: str | None = None, *, statuses: Iterable[CompensationStatus] | None = None
    ) -> list[CompensationRecord]:
        stmt = select(_COMP).order_by(_COMP.c.created_at)
        if run_id is not None:
            stmt = stmt.where(_COMP.c.run_id == run_id)
        if statuses is not None:
            stmt = stmt.where(_COMP.c.status.in_(list(statuses)))
        return [CompensationRecord.model_validate(r._mapping) for r in await self.hit_store.store.fetch_all(stmt)]

    async def update(self, token: str, *, status: CompensationStatus | None = None, **values: Any) -> None:
        if status is not None:
            values["status"] = status
        async with self.hit_store.store.transaction() as conn:
            await conn.execute(update(_COMP).where(_COMP.c.token == token).values(updated_at=now(), **values))
