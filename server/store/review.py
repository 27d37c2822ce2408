"""What the review dashboard, the metrics and the export read, and the review decisions they record.

Reads are aggregate (GROUP BY) or paged by a keyset (created_at, id), so no query loads a whole run:
an export of a run of any size holds one page of rows at a time.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Index, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from server.states import HitCount, hit_count
from server.store.compensation_table import COMPENSATION_FREE
from server.store.compensation_table import COMPENSATION_TABLE as _COMP
from server.store.hits import HIT_FREE, BonusRecord, HitPlan, HitRecord
from server.store.models import AgentRow, Conversation, MessageRow, Meta, TaskRun, WorldData, now
from server.store.store import Store

Cursor = tuple[float, str]  # (created_at, id) of the last row of the previous page


@dataclass(frozen=True, slots=True)
class MessageLine:
    """A stored message as review and export read it: a plain record, cheap to make by the hundred thousand."""

    id: str
    agent_id: str | None
    sender: str
    kind: str
    text: str
    data: dict[str, Any]
    created_at: float


class ReviewAction(SQLModel, table=True):
    """One review decision, with its reason: approve, reject, bonus, block or unblock.

    The id is the action's idempotency key: a bonus retried with the same key is recorded (and paid) once.
    """

    __tablename__ = "review_action"
    __table_args__ = (Index("ix_review_agent", "agent_id", "created_at"), Index("ix_review_run", "run_id"))
    id: str = Field(primary_key=True, max_length=64)
    run_id: str = Field(default="", max_length=64)
    agent_id: str = Field(default="", max_length=40)
    worker_id: str = Field(max_length=128)
    assignment_id: str = Field(default="", max_length=128)
    action: str = Field(max_length=16)
    reason: str = Field(default="", max_length=1024)
    amount_cents: int = 0
    actor: str = Field(default="admin", max_length=64)
    created_at: float = Field(default_factory=now)


_AGENT = AgentRow.__table__  # type: ignore[attr-defined]
_CONV = Conversation.__table__  # type: ignore[attr-defined]
_MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
_WORLD = WorldData.__table__  # type: ignore[attr-defined]
_RUN = TaskRun.__table__  # type: ignore[attr-defined]
_META = Meta.__table__  # type: ignore[attr-defined]
_HIT = HitRecord.__table__  # type: ignore[attr-defined]
_PLAN = HitPlan.__table__  # type: ignore[attr-defined]
_BONUS = BonusRecord.__table__  # type: ignore[attr-defined]
_REVIEW = ReviewAction.__table__  # type: ignore[attr-defined]


class ReviewStore:
    """Read queries for review, metrics and export; writes only review decisions. Uses the Store's helpers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- counts -------------------------------------------------------------------------------

    async def agent_states(self, run_id: str | None = None) -> dict[tuple[str, str], int]:
        """(run id, agent state) -> agents."""
        stmt = select(_AGENT.c.run_id, _AGENT.c.state, func.count()).group_by(_AGENT.c.run_id, _AGENT.c.state)
        if run_id is not None:
            stmt = stmt.where(_AGENT.c.run_id == run_id)
        return {(str(r[0]), str(r[1])): int(r[2]) for r in await self.store.fetch_all(stmt)}

    async def conversation_states(self, run_id: str | None = None) -> dict[tuple[str, str], int]:
        """(run id, conversation state) -> task conversations (onboarding ones are not counted)."""
        stmt = (
            select(_CONV.c.run_id, _CONV.c.state, func.count())
            .where(_CONV.c.kind == "task")
            .group_by(_CONV.c.run_id, _CONV.c.state)
        )
        if run_id is not None:
            stmt = stmt.where(_CONV.c.run_id == run_id)
        return {(str(r[0]), str(r[1])): int(r[2]) for r in await self.store.fetch_all(stmt)}

    async def message_counts(self) -> dict[str, int]:
        """Run id -> messages stored."""
        stmt = select(_MESSAGE.c.run_id, func.count()).group_by(_MESSAGE.c.run_id)
        return {str(r[0]): int(r[1]) for r in await self.store.fetch_all(stmt)}

    async def hit_states(self, run_id: str | None = None) -> dict[tuple[str, HitCount], int]:
        """(run id, what the HIT counts as: `hit_count` of its status and its assignment's) -> HITs."""
        columns = (_HIT.c.run_id, _HIT.c.status, _HIT.c.assignment_status)
        stmt = select(*columns, func.count()).group_by(*columns)
        if run_id is not None:
            stmt = stmt.where(_HIT.c.run_id == run_id)
        counts: Counter[tuple[str, HitCount]] = Counter()
        for r in await self.store.fetch_all(stmt):
            counts[(str(r[0]), hit_count(str(r[1]), str(r[2])))] += int(r[3])
        return dict(counts)

    async def budgets(self, run_id: str | None = None) -> dict[str, int]:
        """Run id -> budget cap in cents (0: no cap), for runs the HIT manager publishes."""
        stmt = select(_PLAN.c.run_id, _PLAN.c.budget_cents)
        if run_id is not None:
            stmt = stmt.where(_PLAN.c.run_id == run_id)
        return {str(r[0]): int(r[1]) for r in await self.store.fetch_all(stmt)}

    async def spend(self, run_id: str | None = None) -> dict[str, int]:
        """Run id -> cents spent or committed: HITs that may still cost (not expired or failed), bonuses and
        compensations.

        The same rule as the HIT manager's budget check (`HitStore.spend`), for every run in three queries.
        """
        hits_stmt = (
            select(_HIT.c.run_id, func.sum(_HIT.c.charge_cents))
            .where(_HIT.c.status.not_in(HIT_FREE))
            .group_by(_HIT.c.run_id)
        )
        bonus_stmt = select(_BONUS.c.run_id, func.sum(_BONUS.c.amount_cents + _BONUS.c.fee_cents)).group_by(
            _BONUS.c.run_id
        )
        if run_id is not None:
            hits_stmt = hits_stmt.where(_HIT.c.run_id == run_id)
            bonus_stmt = bonus_stmt.where(_BONUS.c.run_id == run_id)
        comp_stmt = (
            select(_COMP.c.run_id, func.sum(_COMP.c.amount_cents + _COMP.c.fee_cents))
            .where(_COMP.c.status.not_in(COMPENSATION_FREE))
            .group_by(_COMP.c.run_id)
        )
        if run_id is not None:
            comp_stmt = comp_stmt.where(_COMP.c.run_id == run_id)
        hits = await self.store.fetch_all(hits_stmt)
        bonuses = await self.store.fetch_all(bonus_stmt)
        compensations = await self.store.fetch_all(comp_stmt)
        spend: dict[str, int] = {}
        for row in [*hits, *bonuses, *compensations]:
            spend[str(row[0])] = spend.get(str(row[0]), 0) + int(row[1] or 0)
        return spend

    # ---- conversations and transcripts --------------------------------------------------------

    async def conversation_page(
        self, run_id: str, *, limit: int, offset: int = 0, kind: str = "task"
    ) -> list[tuple[Conversation, int]]:
        """Newest first, each with its message count."""
        counts = (
            select(_MESSAGE.c.conversation_id, func.count().label("n"))
            .where(_MESSAGE.c.run_id == run_id)
            .group_by(_MESSAGE.c.conversation_id)
            .subquery()
        )
        stmt = (
            select(_CONV, func.coalesce(counts.c.n, 0).label("message_count"))
            .outerjoin(counts, counts.c.conversation_id == _CONV.c.id)
            .where(_CONV.c.run_id == run_id, _CONV.c.kind == kind)
            .order_by(_CONV.c.created_at.desc(), _CONV.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = await self.store.fetch_all(stmt)
        return [(Conversation.model_validate(_without(r._mapping, "message_count")), int(r[-1])) for r in rows]

    async def conversations_after(self, run_id: str, *, after: Cursor | None, limit: int) -> list[Conversation]:
        """Task conversations of a run, oldest first, the page after `after`."""
        stmt = select(_CONV).where(_CONV.c.run_id == run_id, _CONV.c.kind == "task")
        stmt = _after(stmt, _CONV, after).order_by(_CONV.c.created_at, _CONV.c.id).limit(limit)
        return [Conversation.model_validate(r._mapping) for r in await self.store.fetch_all(stmt)]

    async def messages_after(self, conversation_id: str, *, after: Cursor | None, limit: int) -> list[MessageLine]:
        m = _MESSAGE.c
        stmt = select(m.id, m.agent_id, m.sender, m.kind, m.text, m.data, m.created_at).where(
            m.conversation_id == conversation_id
        )
        stmt = _after(stmt, _MESSAGE, after).order_by(m.created_at, m.id).limit(limit)
        return [MessageLine(*row) for row in await self.store.fetch_all(stmt)]

    async def agents_by_id(self, agent_ids: Iterable[str]) -> dict[str, AgentRow]:
        ids = [a for a in agent_ids if a and not a.startswith("bot:")]
        if not ids:
            return {}
        rows = await self.store.fetch_all(select(_AGENT).where(_AGENT.c.id.in_(ids)))
        return {str(r._mapping["id"]): AgentRow.model_validate(r._mapping) for r in rows}

    async def world_data(self, conversation_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(conversation_ids)
        if not ids:
            return {}
        rows = await self.store.fetch_all(
            select(_WORLD.c.conversation_id, _WORLD.c.data).where(_WORLD.c.conversation_id.in_(ids))
        )
        return {str(r[0]): dict(r[1]) for r in rows}

    # ---- review decisions ---------------------------------------------------------------------

    async def record(self, action: ReviewAction) -> tuple[ReviewAction, bool]:
        """Store a decision; (the stored one, False) if its id was recorded before."""
        try:
            async with self.store.transaction() as conn:
                await conn.execute(insert(_REVIEW).values(**action.model_dump()))
        except IntegrityError:
            existing = await self.action(action.id)
            if existing is None:
                raise
            return existing, False
        return action, True

    async def actions_for_run(self, run_id: str, *, action: str | None = None) -> list[ReviewAction]:
        stmt = select(_REVIEW).where(_REVIEW.c.run_id == run_id).order_by(_REVIEW.c.created_at)
        if action is not None:
            stmt = stmt.where(_REVIEW.c.action == action)
        return [ReviewAction.model_validate(r._mapping) for r in await self.store.fetch_all(stmt)]

    async def action(self, action_id: str) -> ReviewAction | None:
        row = await self.store.fetch_one(select(_REVIEW).where(_REVIEW.c.id == action_id))
        return ReviewAction.model_validate(row._mapping) if row else None

    async def actions_for(self, agent_ids: Iterable[str]) -> list[ReviewAction]:
        ids = list(agent_ids)
        if not ids:
            return []
        rows = await self.store.fetch_all(
            select(_REVIEW).where(_REVIEW.c.agent_id.in_(ids)).order_by(_REVIEW.c.created_at)
        )
        return [ReviewAction.model_validate(r._mapping) for r in rows]

    async def agents_in_states(self, run_id: str, states: Iterable[str], limit: int = 10_000) -> list[AgentRow]:
        rows = await self.store.fetch_all(
            select(_AGENT)
            .where(_AGENT.c.run_id == run_id, _AGENT.c.state.in_(list(states)))
            .order_by(_AGENT.c.created_at)
            .limit(limit)
        )
        return [AgentRow.model_validate(r._mapping) for r in rows]

    # ---- export salt --------------------------------------------------------------------------

    async def export_salt(self) -> str:
        """The salt worker ids are hashed with in exports: made once per database, so hashes stay stable."""
        row = await self.store.fetch_one(select(_META.c.value).where(_META.c.key == "export_salt"))
        if row is not None:
            return str(row[0])
        try:
            async with self.store.transaction() as conn:
                await conn.execute(insert(_META).values(key="export_salt", value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another process made it first
        return await self.export_salt()


def _after(stmt: Any, table: Any, after: Cursor | None) -> Any:
    if after is None:
        return stmt
    created_at, row_id = after
    return stmt.where(
        or_(table.c.created_at > created_at, and_(table.c.created_at == created_at, table.c.id > row_id))
    )


def _without(mapping: Any, *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}
