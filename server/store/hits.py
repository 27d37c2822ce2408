"""The HIT manager's records: a plan per published run, one record per HIT, qualification ids, bonuses, and
the answers of form HITs (one row per submitted assignment: item, worker, answers).

Money is integer cents. Spend is computed from the records (never kept as a running total that could
drift): every HIT that may still cost its reward + fee, plus every bonus sent or being sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from server.states import AssignmentStatus, BonusStatus, HitStatus
from server.store.compensation_table import COMPENSATION_FREE, COMPENSATION_LIVE
from server.store.compensation_table import COMPENSATION_TABLE as _COMP
from server.store.models import now
from server.store.store import Store

# HIT record statuses: `HitStatus` (server/states.py) says what each means.
_H = HitStatus
HIT_LIVE = (_H.CREATING, _H.OPEN, _H.TAKEN)
HIT_FREE = (_H.EXPIRED, _H.FAILED)  # statuses that cost nothing
UNSETTLED = (_H.CREATING, _H.OPEN, _H.TAKEN, _H.CLOSED, _H.SUBMITTED)  # work may still come through these
# What a run's HITs ask: `external` (ExternalQuestion: Parley's task page, one assignment per HIT) or `html`
# (HTMLQuestion: one HIT per item of a form task, `assignments` workers each).
EXTERNAL, HTML = "external", "html"


class HitPlan(SQLModel, table=True):
    """How a run is published: on which account, within what budget, with which HIT type."""

    __tablename__ = "mturk_run"
    run_id: str = Field(primary_key=True, max_length=64)
    account: str = Field(max_length=255)
    publishing: bool = True
    budget_cents: int = 0  # 0: no cap (refused on live)
    reward_cents: int = 0
    hit_type_id: str = Field(default="", max_length=64)
    next_slot: int = 0
    lifetime_s: int = 4 * 3600
    assignment_duration_s: int = 3600
    auto_approval_delay_s: int = 3 * 24 * 3600
    overbook: float = 1.25
    locales: list[str] = Field(default_factory=lambda: ["US"], sa_column=Column(JSON, nullable=False))
    min_approval_rate: int = 95
    created_at: float = Field(default_factory=now)
    question: str = Field(default=EXTERNAL, max_length=16)
    assignments: int = 1  # MaxAssignments of each HIT
    max_hits: int = 0  # HITs the run may ever publish (`parley run --hits`); 0: as many as its target needs


class HitRecord(SQLModel, table=True):
    __tablename__ = "mturk_hit"
    __table_args__ = (UniqueConstraint("run_id", "slot", name="uq_mturk_hit_slot"),)
    token: str = Field(primary_key=True, max_length=64)  # the UniqueRequestToken
    run_id: str = Field(max_length=64, index=True)
    slot: int
    hit_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=HitStatus.CREATING, max_length=16)  # a HitStatus
    charge_cents: int = 0
    expires_at: float = 0.0
    assignment_id: str = Field(default="", max_length=128)
    worker_id: str = Field(default="", max_length=128)
    assignment_status: str = Field(default="", max_length=16)
    auto_approve_at: float = 0.0
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)
    # Form HITs: the item the HIT asks about ("" for an adopted HIT: its answers name the item) and how many
    # assignments it has. Their assignments live in `mturk_form_answer`, not in the fields above.
    question: str = Field(default=EXTERNAL, max_length=16)
    item_id: str = Field(default="", max_length=255)
    max_assignments: int = 1


class FormAnswer(SQLModel, table=True):
    """One submitted assignment of a form HIT: which item, which worker, what they answered."""

    __tablename__ = "mturk_form_answer"
    __table_args__ = (Index("ix_mturk_form_answer_item", "run_id", "item_id"),)
    assignment_id: str = Field(primary_key=True, max_length=128)
    run_id: str = Field(max_length=64)
    hit_id: str = Field(max_length=64, index=True)
    item_id: str = Field(max_length=255)
    worker_id: str = Field(max_length=128)
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str = Field(default="", max_length=1024)  # the Answer could not be read (answers stay empty)
    assignment_status: str = Field(default="Submitted", max_length=16)
    submitted_at: float = 0.0
    auto_approve_at: float = 0.0
    updated_at: float = Field(default_factory=now)


class QualificationRecord(SQLModel, table=True):
    """A qualification type Parley created on an account, remembered so it is created once."""

    __tablename__ = "mturk_qualification"
    account: str = Field(primary_key=True, max_length=255)
    name: str = Field(primary_key=True, max_length=255)
    type_id: str = Field(max_length=64)


class BonusRecord(SQLModel, table=True):
    __tablename__ = "mturk_bonus"
    token: str = Field(primary_key=True, max_length=64)
    run_id: str = Field(max_length=64, index=True)
    assignment_id: str = Field(max_length=128)
    worker_id: str = Field(max_length=128)
    amount_cents: int
    fee_cents: int
    reason: str = Field(max_length=1024)
    status: str = Field(default=BonusStatus.SENDING, max_length=16)  # a BonusStatus
    created_at: float = Field(default_factory=now)


_PLAN = HitPlan.__table__  # type: ignore[attr-defined]
_HIT = HitRecord.__table__  # type: ignore[attr-defined]
_PLAN_OF = select(_PLAN).where(_PLAN.c.run_id == bindparam("run_id"))  # read on every state change: built once
_QUAL = QualificationRecord.__table__  # type: ignore[attr-defined]
_BONUS = BonusRecord.__table__  # type: ignore[attr-defined]
_ANSWER = FormAnswer.__table__  # type: ignore[attr-defined]


class BudgetExceeded(Exception):
    def __init__(self, run_id: str, spent_cents: int, wanted_cents: int, budget_cents: int) -> None:
        super().__init__(
            f"run {run_id}: ${wanted_cents / 100:.2f} more would pass the budget cap of ${budget_cents / 100:.2f} "
            f"(${spent_cents / 100:.2f} spent or committed)"
        )
        self.spent_cents = spent_cents
        self.budget_cents = budget_cents


@dataclass(frozen=True)
class Money:
    """A run's money in cents. `reserved`: held for what may still cost (HITs being made, open or taken, bonuses
    being sent, compensation HITs not yet worked); `spent`: the rest, for work done (submitted or reviewed HITs,
    bonuses and compensations paid). Their sum is what the budget cap counts."""

    spent_cents: int
    reserved_cents: int

    @property
    def total_cents(self) -> int:
        return self.spent_cents + self.reserved_cents


class HitLimitReached(Exception):
    """The run has published all the HITs `--hits` allows."""

    def __init__(self, run_id: str, max_hits: int) -> None:
        super().__init__(f"run {run_id} has published its {max_hits} HIT(s) (--hits)")


class HitStore:
    """Async API over the HIT manager's tables; uses the Store's engine, transactions and write lock."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- plans --------------------------------------------------------------------------------

    async def save_plan(self, plan: HitPlan) -> HitPlan:
        """Create the plan, or update its settings (never its slot counter or HIT type)."""
        values = plan.model_dump(exclude={"next_slot", "hit_type_id", "created_at"})
        try:
            async with self.store.transaction() as conn:
                await conn.execute(insert(_PLAN).values(**plan.model_dump()))
        except IntegrityError:
            async with self.store.transaction() as conn:
                await conn.execute(update(_PLAN).where(_PLAN.c.run_id == plan.run_id).values(**values))
        saved = await self.plan(plan.run_id)
        assert saved is not None
        return saved

    async def plan(self, run_id: str) -> HitPlan | None:
        row = await self.store.fetch_one(_PLAN_OF, {"run_id": run_id})
        return HitPlan.model_validate(row._mapping) if row else None

    async def plans(self, account: str | None = None) -> list[HitPlan]:
        stmt = select(_PLAN).order_by(_PLAN.c.created_at)
        if account is not None:
            stmt = stmt.where(_PLAN.c.account == account)
        return [HitPlan.model_validate(r._mapping) for r in await self.store.fetch_all(stmt)]

    async def unsettled_runs(self) -> set[str]:
        """Runs whose HITs still need following: publishing, or a HIT that work may still come through
        (being made, open, taken, closed with assignments not yet looked at, awaiting review)."""
        publishing = await self.store.fetch_all(select(_PLAN.c.run_id).where(_PLAN.c.publishing.is_(True)))
        following = await self.store.fetch_all(
            select(_HIT.c.run_id).where(_HIT.c.status.in_(UNSETTLED)).distinct()
        )
        return {str(r[0]) for r in (*publishing, *following)}

    async def update_plan(self, run_id: str, **values: Any) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(update(_PLAN).where(_PLAN.c.run_id == run_id).values(**values))

    # ---- HIT records --------------------------------------------------------------------------

    async def reserve_hit(self, run_id: str, charge_cents: int, token_for: Any, **fields: Any) -> HitRecord:
        """Take the run's next slot and record a `creating` HIT for it, before MTurk is asked.

        `token_for(slot)` makes the slot's UniqueRequestToken; `fields` are the record's other columns (a form
        HIT's item). Refuses (BudgetExceeded) when the charge would pass the budget: the check and the
        reservation are one transaction, so two callers cannot both pass. A token already recorded (a form
        item reserved before) raises IntegrityError and changes nothing.
        """
        async with self.store.transaction() as conn:
            plan = (await conn.execute(select(_PLAN).where(_PLAN.c.run_id == run_id))).first()
            if plan is None:
                raise KeyError(f"run {run_id} has no HIT plan")
            budget = int(plan._mapping["budget_cents"])
            spent = await self.run_spend_cents(conn, run_id)
            if budget and spent + charge_cents > budget:
                raise BudgetExceeded(run_id, spent, charge_cents, budget)
            max_hits = int(plan._mapping["max_hits"])
            if max_hits and await self._published(conn, run_id) >= max_hits:
                raise HitLimitReached(run_id, max_hits)
            slot = int(plan._mapping["next_slot"])
            await conn.execute(update(_PLAN).where(_PLAN.c.run_id == run_id).values(next_slot=slot + 1))
            record = HitRecord(token=token_for(slot), run_id=run_id, slot=slot, charge_cents=charge_cents, **fields)
            await conn.execute(insert(_HIT).values(**record.model_dump()))
        return record

    async def adopt_hit(
        self, run_id: str, *, hit_id: str, charge_cents: int, status: HitStatus, expires_at: float, **fields: Any
    ) -> HitRecord:
        """Record a HIT found on MTurk that no record names (made just before a crash)."""
        async with self.store.transaction() as conn:
            plan = (await conn.execute(select(_PLAN.c.next_slot).where(_PLAN.c.run_id == run_id))).first()
            slot = int(plan[0]) if plan else 0
            await conn.execute(update(_PLAN).where(_PLAN.c.run_id == run_id).values(next_slot=slot + 1))
            record = HitRecord(
                token=f"adopted-{hit_id}"[:64], run_id=run_id, slot=slot, hit_id=hit_id, status=status,
                charge_cents=charge_cents, expires_at=expires_at, **fields,
            )
            await conn.execute(insert(_HIT).values(**record.model_dump()))
        return record

    async def set_hit(self, token: str, *, status: HitStatus | None = None, **values: Any) -> None:
        if status is not None:
            values["status"] = status
        async with self.store.transaction() as conn:
            await conn.execute(update(_HIT).where(_HIT.c.token == token).values(updated_at=now(), **values))

    async def hits(self, run_id: str, *, statuses: Iterable[HitStatus] | None = None) -> list[HitRecord]:
        stmt = select(_HIT).where(_HIT.c.run_id == run_id).order_by(_HIT.c.slot)
        if statuses is not None:
            stmt = stmt.where(_HIT.c.status.in_(list(statuses)))
        return [HitRecord.model_validate(r._mapping) for r in await self.store.fetch_all(stmt)]

    async def hit_for_assignment(self, assignment_id: str) -> HitRecord | None:
        row = await self.store.fetch_one(select(_HIT).where(_HIT.c.assignment_id == assignment_id))
        return HitRecord.model_validate(row._mapping) if row else None

    async def hit_by_id(self, hit_id: str) -> HitRecord | None:
        row = await self.store.fetch_one(select(_HIT).where(_HIT.c.hit_id == hit_id))
        return HitRecord.model_validate(row._mapping) if row else None

    # ---- form answers -------------------------------------------------------------------------

    async def save_form_answer(self, answer: FormAnswer) -> bool:
        """Keep a submitted form assignment once; seen again, only its review status moves. True when new."""
        try:
            async with self.store.transaction() as conn:
                await conn.execute(insert(_ANSWER).values(**answer.model_dump()))
            return True
        except IntegrityError:
            await self.set_form_status(
                answer.assignment_id, status=answer.assignment_status, auto_approve_at=answer.auto_approve_at
            )
            return False

    async def set_form_status(
        self, assignment_id: str, *, status: AssignmentStatus | str, auto_approve_at: float | None = None
    ) -> None:
        values: dict[str, Any] = {"assignment_status": status, "updated_at": now()}
        if auto_approve_at is not None:
            values["auto_approve_at"] = auto_approve_at
        async with self.store.transaction() as conn:
            await conn.execute(update(_ANSWER).where(_ANSWER.c.assignment_id == assignment_id).values(**values))

    async def form_answers(
        self, run_id: str, *, hit_id: str | None = None, statuses: Iterable[str] | None = None
    ) -> list[FormAnswer]:
        stmt = select(_ANSWER).where(_ANSWER.c.run_id == run_id)
        if hit_id is not None:
            stmt = stmt.where(_ANSWER.c.hit_id == hit_id)
        if statuses is not None:
            stmt = stmt.where(_ANSWER.c.assignment_status.in_(list(statuses)))
        stmt = stmt.order_by(_ANSWER.c.item_id, _ANSWER.c.submitted_at, _ANSWER.c.assignment_id)
        return [FormAnswer.model_validate(r._mapping) for r in await self.store.fetch_all(stmt)]

    async def form_answer(self, assignment_id: str) -> FormAnswer | None:
        row = await self.store.fetch_one(select(_ANSWER).where(_ANSWER.c.assignment_id == assignment_id))
        return FormAnswer.model_validate(row._mapping) if row else None

    async def form_answer_counts(self, run_id: str) -> dict[str, int]:
        """HIT id -> answers kept for it."""
        stmt = select(_ANSWER.c.hit_id, func.count()).where(_ANSWER.c.run_id == run_id).group_by(_ANSWER.c.hit_id)
        return {str(hit): int(count) for hit, count in await self.store.fetch_all(stmt)}

    # ---- money --------------------------------------------------------------------------------

    @staticmethod
    async def run_budget_cents(conn: Any, run_id: str) -> int:
        """The run's budget cap in cents (0: none, or no plan)."""
        plan = (await conn.execute(select(_PLAN.c.budget_cents).where(_PLAN.c.run_id == run_id))).first()
        return int(plan[0]) if plan else 0

    @staticmethod
    async def _published(conn: Any, run_id: str) -> int:
        """HITs of the run that MTurk made (or may be making): every record but the failed ones."""
        found = await conn.execute(
            select(func.count()).select_from(_HIT).where(_HIT.c.run_id == run_id, _HIT.c.status != HitStatus.FAILED)
        )
        return int(found.scalar_one())

    async def published(self, run_id: str) -> int:
        async with self.store.engine.connect() as conn:
            return await self._published(conn, run_id)

    @staticmethod
    async def run_spend_cents(conn: Any, run_id: str) -> int:
        hits = await conn.execute(
            select(func.coalesce(func.sum(_HIT.c.charge_cents), 0))
            .where(_HIT.c.run_id == run_id, _HIT.c.status.not_in(HIT_FREE))
        )
        bonuses = await conn.execute(
            select(func.coalesce(func.sum(_BONUS.c.amount_cents + _BONUS.c.fee_cents), 0))
            .where(_BONUS.c.run_id == run_id)
        )
        compensations = await conn.execute(
            select(func.coalesce(func.sum(_COMP.c.amount_cents + _COMP.c.fee_cents), 0))
            .where(_COMP.c.run_id == run_id, _COMP.c.status.not_in(COMPENSATION_FREE))
        )
        return int(hits.scalar_one()) + int(bonuses.scalar_one()) + int(compensations.scalar_one())

    async def money(self, run_id: str) -> Money:
        """The run's spend split into spent and reserved (see Money)."""
        async with self.store.engine.connect() as conn:
            total = await self.run_spend_cents(conn, run_id)
            hits = await conn.execute(
                select(func.coalesce(func.sum(_HIT.c.charge_cents), 0))
                .where(_HIT.c.run_id == run_id, _HIT.c.status.in_(HIT_LIVE))
            )
            bonuses = await conn.execute(
                select(func.coalesce(func.sum(_BONUS.c.amount_cents + _BONUS.c.fee_cents), 0))
                .where(_BONUS.c.run_id == run_id, _BONUS.c.status != BonusStatus.PAID)
            )
            compensations = await conn.execute(
                select(func.coalesce(func.sum(_COMP.c.amount_cents + _COMP.c.fee_cents), 0))
                .where(_COMP.c.run_id == run_id, _COMP.c.status.in_(COMPENSATION_LIVE))
            )
        reserved = int(hits.scalar_one()) + int(bonuses.scalar_one()) + int(compensations.scalar_one())
        return Money(spent_cents=total - reserved, reserved_cents=reserved)

    async def spend(self, run_id: str) -> int:
        """Cents spent or committed by the run: live and worked HITs' reward + fee, every bonus, and every
        compensation HIT not closed unworked."""
        async with self.store.engine.connect() as conn:
            return await self.run_spend_cents(conn, run_id)

    # ---- qualifications -----------------------------------------------------------------------

    async def qualification(self, account: str, *, name: str) -> str | None:
        stmt = select(_QUAL.c.type_id).where(_QUAL.c.account == account, _QUAL.c.name == name)
        row = await self.store.fetch_one(stmt)
        return str(row[0]) if row else None

    async def remember_qualification(self, account: str, *, name: str, type_id: str) -> None:
        try:
            async with self.store.transaction() as conn:
                await conn.execute(insert(_QUAL).values(account=account, name=name, type_id=type_id))
        except IntegrityError:
            pass  # remembered already (the same type: names are unique per account)

    # ---- bonuses ------------------------------------------------------------------------------

    async def reserve_bonus(self, bonus: BonusRecord) -> BonusRecord:
        """Record a bonus before sending it; the existing record if this token was seen. Checks the budget."""
        existing = await self.bonus(bonus.token)
        if existing is not None:
            return existing
        async with self.store.transaction() as conn:
            plan = (await conn.execute(select(_PLAN.c.budget_cents).where(_PLAN.c.run_id == bonus.run_id))).first()
            budget = int(plan[0]) if plan else 0
            spent = await self.run_spend_cents(conn, bonus.run_id)
            wanted = bonus.amount_cents + bonus.fee_cents
            if budget and spent + wanted > budget:
                raise BudgetExceeded(bonus.run_id, spent, wanted, budget)
            await conn.execute(insert(_BONUS).values(**bonus.model_dump()))
        return bonus

    async def bonus(self, token: str) -> BonusRecord | None:
        row = await self.store.fetch_one(select(_BONUS).where(_BONUS.c.token == token))
        return BonusRecord.model_validate(row._mapping) if row else None

    async def bonuses(self, run_id: str) -> list[BonusRecord]:
        rows = await self.store.fetch_all(select(_BONUS).where(_BONUS.c.run_id == run_id).order_by(_BONUS.c.created_at))
        return [BonusRecord.model_validate(r._mapping) for r in rows]

    async def set_bonus_status(self, token: str, *, status: BonusStatus) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(update(_BONUS).where(_BONUS.c.token == token).values(status=status))
