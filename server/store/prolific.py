"""What Parley records of its Prolific account: how each run recruits (its plan), which studies it made for
which run, its participant groups (the block list, exclusion lists), each bonus (created, being paid, paid)
and the last status seen of each submission.

Prolific's calls that create or pay are not idempotent (a second `pay` pays again), so Parley writes its
intent here before such a call and its outcome after; the tables are shared by every instance and by the CLI,
and a restart finds them as they were. Moves that must happen once are conditional UPDATEs (a bonus goes
`created -> paying` for exactly one caller); a run's budget check and the bonus it admits are one
transaction that first writes the run's plan row, so two callers cannot both pass.

Money is in the account currency's minor units. Every row names its account: records are never mixed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import Index, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from server.states import ProlificBonusState
from server.store.models import now
from server.store.store import Store


class StudyPlan(SQLModel, table=True):
    """How a run is recruited on Prolific (the counterpart of an MTurk run's HIT plan)."""

    __tablename__ = "prolific_run"
    run_id: str = Field(primary_key=True, max_length=64)
    account: str = Field(default="builtin", max_length=255)
    task_module: str = Field(max_length=255)
    reward_cents: int
    budget_cents: int = 0  # 0: no cap (refused on live Prolific)
    estimated_minutes: int = 10
    max_minutes: int = 40
    overbook: float = 1.25
    publishing: bool = True
    created_at: float = Field(default_factory=now)


class StudyEntry(SQLModel, table=True):
    """A study Parley made (or is making) for a run. `study_id` is "" while Prolific has not answered: a crash
    there is resolved by the study's internal name, `parley:<run id>`."""

    __tablename__ = "prolific_study"
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=255)
    run_id: str = Field(max_length=64, index=True)
    study_id: str = Field(default="", max_length=64, index=True)
    reward_cents: int = 0
    created_at: float = Field(default_factory=now)


class BonusEntry(SQLModel, table=True):
    __tablename__ = "prolific_bonus"
    account: str = Field(primary_key=True, max_length=255)
    key: str = Field(primary_key=True, max_length=255)  # Parley's idempotency key
    run_id: str = Field(max_length=64, index=True)
    submission_id: str = Field(max_length=64)
    worker_id: str = Field(max_length=64)
    amount_cents: int
    fee_cents: int = 0
    vat_cents: int = 0
    bulk_id: str = Field(default="", max_length=64)  # Prolific's bulk bonus payment
    state: str = Field(default=ProlificBonusState.CREATED, max_length=16)  # a ProlificBonusState
    created_at: float = Field(default_factory=now)


class GroupEntry(SQLModel, table=True):
    """A participant group Parley made: its block list, or one of its exclusion lists (by name)."""

    __tablename__ = "prolific_group"
    account: str = Field(primary_key=True, max_length=255)
    name: str = Field(primary_key=True, max_length=255)
    group_id: str = Field(max_length=64)


class SubmissionEntry(SQLModel, table=True):
    """A submission as the study manager last saw it on Prolific (its status moves only forward there)."""

    __tablename__ = "prolific_submission"
    __table_args__ = (Index("ix_prolific_submission_run", "account", "run_id"),)
    id: str = Field(primary_key=True, max_length=64)  # Prolific's submission id (the SESSION_ID)
    account: str = Field(max_length=255)
    run_id: str = Field(max_length=64)
    study_id: str = Field(max_length=64)
    participant_id: str = Field(max_length=64)
    status: str = Field(max_length=32)  # Prolific's own word
    code: str = Field(default="", max_length=64)
    updated_at: float = Field(default_factory=now)


_PLAN = StudyPlan.__table__  # type: ignore[attr-defined]
_STUDY = StudyEntry.__table__  # type: ignore[attr-defined]
_BONUS = BonusEntry.__table__  # type: ignore[attr-defined]
_GROUP = GroupEntry.__table__  # type: ignore[attr-defined]
_SUBMISSION = SubmissionEntry.__table__  # type: ignore[attr-defined]


class ProlificRecords:
    """One Prolific account's records, over the Store's engine, transactions and write lock."""

    def __init__(self, store: Store, account: str) -> None:
        self.store = store
        self.account = account

    # ---- plans --------------------------------------------------------------------------------

    async def save_plan(self, plan: StudyPlan) -> StudyPlan:
        """Create the run's plan, or take its new settings; either way it publishes again."""
        values = plan.model_dump(exclude={"created_at"}) | {"account": self.account, "publishing": True}
        try:
            async with self.store.transaction() as conn:
                await conn.execute(insert(_PLAN).values(**values, created_at=plan.created_at))
        except IntegrityError:
            existing = await self.plan(plan.run_id)
            if existing is None or existing.account != self.account:
                raise ValueError(f"run {plan.run_id} recruits on another Prolific account: use a new run id") from None
            async with self.store.transaction() as conn:
                await conn.execute(update(_PLAN).where(_PLAN.c.run_id == plan.run_id).values(**values))
        saved = await self.plan(plan.run_id)
        assert saved is not None
        return saved

    async def plan(self, run_id: str) -> StudyPlan | None:
        row = await self.store.fetch_one(select(_PLAN).where(_PLAN.c.run_id == run_id, _PLAN.c.account == self.account))
        return StudyPlan.model_validate(row._mapping) if row else None

    async def plans(self) -> list[StudyPlan]:
        rows = await self.store.fetch_all(
            select(_PLAN).where(_PLAN.c.account == self.account).order_by(_PLAN.c.created_at)
        )
        return [StudyPlan.model_validate(r._mapping) for r in rows]

    async def set_publishing(self, run_id: str, *, publishing: bool) -> bool:
        """Whether the run has a plan on this account (and now publishes or not)."""
        async with self.store.transaction() as conn:
            done = await conn.execute(
                update(_PLAN).where(_PLAN.c.run_id == run_id, _PLAN.c.account == self.account)
                .values(publishing=publishing)
            )
        return bool(done.rowcount)

    # ---- studies ------------------------------------------------------------------------------

    async def studies(self, run_id: str) -> list[StudyEntry]:
        rows = await self.store.fetch_all(
            select(_STUDY).where(_STUDY.c.account == self.account, _STUDY.c.run_id == run_id).order_by(_STUDY.c.id)
        )
        return [StudyEntry.model_validate(r._mapping) for r in rows]

    async def run_of_study(self, study_id: str) -> str:
        """The run a study was made for ("" when Parley did not make it)."""
        row = await self.store.fetch_one(
            select(_STUDY.c.run_id).where(_STUDY.c.account == self.account, _STUDY.c.study_id == study_id)
        )
        return str(row[0]) if row else ""

    async def reserve_study(self, run_id: str, reward_cents: int) -> StudyEntry:
        """Record that a study is being made for the run, before Prolific is asked."""
        entry = StudyEntry(account=self.account, run_id=run_id, reward_cents=reward_cents)
        async with self.store.transaction() as conn:
            made = await conn.execute(insert(_STUDY).values(**entry.model_dump(exclude={"id"})))
            [entry.id] = made.inserted_primary_key or (None,)
        return entry

    async def set_study_id(self, entry: StudyEntry, study_id: str) -> None:
        entry.study_id = study_id
        async with self.store.transaction() as conn:
            await conn.execute(update(_STUDY).where(_STUDY.c.id == entry.id).values(study_id=study_id))

    async def drop_study(self, entry: StudyEntry) -> None:
        """Forget a study that was being made and that Prolific never made."""
        async with self.store.transaction() as conn:
            await conn.execute(delete(_STUDY).where(_STUDY.c.id == entry.id, _STUDY.c.study_id == ""))

    # ---- bonuses ------------------------------------------------------------------------------

    async def bonus(self, key: str) -> BonusEntry | None:
        row = await self.store.fetch_one(select(_BONUS).where(_BONUS.c.account == self.account, _BONUS.c.key == key))
        return BonusEntry.model_validate(row._mapping) if row else None

    async def bonuses_cents(self, run_id: str) -> int:
        """Every bonus of the run, created or paid, with its fee and VAT."""
        total = func.coalesce(func.sum(_BONUS.c.amount_cents + _BONUS.c.fee_cents + _BONUS.c.vat_cents), 0)
        row = await self.store.fetch_one(
            select(total).where(_BONUS.c.account == self.account, _BONUS.c.run_id == run_id)
        )
        return int(row[0]) if row else 0

    async def admit_bonus(
        self, entry: BonusEntry, *, budget_cents: int, studies_cents: int,
        refuse: Callable[[int], Exception],
    ) -> BonusEntry:
        """Record a created bonus unless its key is known (then the known one is returned) or it would pass the
        budget: `studies_cents` (what the run's studies may cost) + the run's bonuses + this one. The check and
        the insert are one transaction holding the run's plan row, so two callers cannot both pass."""
        entry.account = self.account
        try:
            async with self.store.transaction() as conn:
                # A write to the plan row first: it holds the row (PostgreSQL) or the database (SQLite, whose
                # reads take no lock) until commit, so the sum below is not read by two callers at once.
                await conn.execute(update(_PLAN).where(_PLAN.c.run_id == entry.run_id).values(run_id=entry.run_id))
                total = func.coalesce(func.sum(_BONUS.c.amount_cents + _BONUS.c.fee_cents + _BONUS.c.vat_cents), 0)
                bonuses = (await conn.execute(select(total).where(
                    _BONUS.c.account == self.account, _BONUS.c.run_id == entry.run_id))).scalar_one()
                spent = studies_cents + int(bonuses)
                if budget_cents and spent + entry.amount_cents + entry.fee_cents + entry.vat_cents > budget_cents:
                    raise refuse(spent)
                await conn.execute(insert(_BONUS).values(**entry.model_dump()))
        except IntegrityError:
            known = await self.bonus(entry.key)
            assert known is not None
            return known
        return entry

    async def move_bonus(self, key: str, *, was: ProlificBonusState, to: ProlificBonusState) -> bool:
        """Move a bonus from `was` to `to`; False when it was not in `was` (another caller moved it first)."""
        async with self.store.transaction() as conn:
            done = await conn.execute(
                update(_BONUS).where(_BONUS.c.account == self.account, _BONUS.c.key == key, _BONUS.c.state == was)
                .values(state=to)
            )
        return bool(done.rowcount)

    # ---- participant groups -------------------------------------------------------------------

    async def group(self, name: str, make: Callable[[], Awaitable[str]]) -> str:
        """The id of the group `name`, made by `make()` on first use; when two callers make it at once, the
        first recorded wins and both use it."""
        stmt = select(_GROUP.c.group_id).where(_GROUP.c.account == self.account, _GROUP.c.name == name)
        row = await self.store.fetch_one(stmt)
        if row:
            return str(row[0])
        group_id = await make()
        try:
            async with self.store.transaction() as conn:
                await conn.execute(insert(_GROUP).values(account=self.account, name=name, group_id=group_id))
        except IntegrityError:
            row = await self.store.fetch_one(stmt)
            assert row is not None
            return str(row[0])
        return group_id

    # ---- submissions --------------------------------------------------------------------------

    async def seen(self, entry: SubmissionEntry) -> bool:
        """Keep the submission's status as last seen on Prolific; True when it is new or its status moved."""
        entry.account = self.account
        known = await self.store.fetch_one(select(_SUBMISSION.c.status).where(_SUBMISSION.c.id == entry.id))
        if known is not None and str(known[0]) == entry.status:
            return False
        if known is None:
            try:
                async with self.store.transaction() as conn:
                    await conn.execute(insert(_SUBMISSION).values(**entry.model_dump()))
                return True
            except IntegrityError:  # recorded meanwhile by another caller: move its status below
                pass
        async with self.store.transaction() as conn:
            await conn.execute(update(_SUBMISSION).where(_SUBMISSION.c.id == entry.id).values(
                status=entry.status, code=entry.code, updated_at=now()))
        return True

    async def submissions(self, run_id: str) -> list[SubmissionEntry]:
        rows = await self.store.fetch_all(
            select(_SUBMISSION).where(_SUBMISSION.c.account == self.account, _SUBMISSION.c.run_id == run_id)
            .order_by(_SUBMISSION.c.id)
        )
        return [SubmissionEntry.model_validate(r._mapping) for r in rows]
