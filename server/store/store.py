"""The async Store: every read and write Parley makes, as named operations.

Each operation is one transaction (or one savepoint of a group-committed transaction): a record is either
whole or absent.

The writes a worker waits on (a message with its echo event, event appends, state changes, a new agent or
conversation) go through group commit (`group_commit.py`): many callers' writes per transaction, each
caller released only after its commit.

The engines, transactions and group commit underneath are in `database.py`.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from server.states import HOLDING_STATES, WORKED_STATES, AgentState, ConversationState, RunStatus, transition
from server.store.database import Database
from server.store.group_commit import Event, OnCommit
from server.store.models import (
    AgentRow,
    Conversation,
    EventRow,
    MessageRow,
    Meta,
    OnboardingResult,
    TaskRun,
    WorkerRow,
    WorldData,
    now,
)

_AGENT = AgentRow.__table__  # type: ignore[attr-defined]
_EVENT = EventRow.__table__  # type: ignore[attr-defined]
_MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
_CONV = Conversation.__table__  # type: ignore[attr-defined]
_RUN = TaskRun.__table__  # type: ignore[attr-defined]
_META = Meta.__table__  # type: ignore[attr-defined]
_WORKER = WorkerRow.__table__  # type: ignore[attr-defined]
_ONBOARDING = OnboardingResult.__table__  # type: ignore[attr-defined]
_WORLD = WorldData.__table__  # type: ignore[attr-defined]

# The lookups a joining worker and a chat line make, built once (see `Database.fetch_one`).
_AGENT_BY_ID = select(_AGENT).where(_AGENT.c.id == bindparam("agent_id"))
_AGENT_BY_ASSIGNMENT = select(_AGENT).where(
    _AGENT.c.run_id == bindparam("run_id"), _AGENT.c.assignment_id == bindparam("assignment_id")
)
_WORKER_BLOCK = select(_WORKER.c.blocked, _WORKER.c.block_reason).where(_WORKER.c.id == bindparam("worker_id"))

def _in(states: Iterable[AgentState]) -> Any:
    return or_(*(_AGENT.c.state == state.value for state in sorted(states)))  # not IN: no re-rendering per use


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# A worker's units: work done or under way (a conversation entered, not walked out of), and agents on their way
# to one (onboarding, waiting). A join whose page never connected is neither (docs/protocol.md, "Claims").
_UNITS = or_(_in(WORKED_STATES) & (_AGENT.c.conversation_id != ""), _in({AgentState.ONBOARDING, AgentState.WAITING}))
_WORKER_AGENTS = select(_count(_UNITS), _count(_in(HOLDING_STATES))).where(
    _AGENT.c.worker_id == bindparam("worker_id"), _AGENT.c.run_id == bindparam("run_id")
)
_INSERT_AGENT = insert(_AGENT)
_UPDATE_AGENT = update(_AGENT).where(_AGENT.c.id == bindparam("agent_key"))  # SET: the columns in the params
_EVENTS_AFTER = (
    select(_EVENT.c.seq, _EVENT.c.payload)
    .where(_EVENT.c.agent_id == bindparam("agent_id"), _EVENT.c.seq > bindparam("seq"))
    .order_by(_EVENT.c.seq)
    .limit(bindparam("limit"))
)
_HEAD_SEQ = select(func.max(_EVENT.c.seq)).where(_EVENT.c.agent_id == bindparam("agent_id"))
_MESSAGE_BY_CLIENT_ID = select(_MESSAGE).where(
    _MESSAGE.c.agent_id == bindparam("agent_id"), _MESSAGE.c.client_id == bindparam("client_id")
)
_ONBOARDING_OF = select(_ONBOARDING).where(
    _ONBOARDING.c.worker_id == bindparam("worker_id"), _ONBOARDING.c.task_name == bindparam("task_name")
)


class DuplicateMessage(Exception):
    """A client message with this client id is already stored; `.message` is the stored one."""

    def __init__(self, message: MessageRow) -> None:
        super().__init__(message.id)
        self.message = message


class Store(Database):
    """Every read and write Parley makes, as named operations."""

    # ---- meta ---------------------------------------------------------------------------------

    async def secret(self) -> str:
        """The token-signing secret, made once per database so tokens survive restarts."""
        row = await self.fetch_one(select(_META.c.value).where(_META.c.key == "token_secret"))
        if row is not None:
            return str(row[0])
        try:
            async with self.transaction() as conn:
                await conn.execute(insert(_META).values(key="token_secret", value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another instance made it first
        return await self.secret()

    # ---- runs ---------------------------------------------------------------------------------

    async def ensure_run(self, run_id: str, *, task_module: str, options: dict[str, Any]) -> TaskRun:
        existing = await self.get_run(run_id)
        if existing is not None:
            return existing
        with contextlib.suppress(IntegrityError):
            async with self.transaction() as conn:
                await conn.execute(
                    insert(TaskRun).values(id=run_id, task_module=task_module, options=options, created_at=now())
                )
        run = await self.get_run(run_id)
        assert run is not None
        return run

    async def get_run(self, run_id: str) -> TaskRun | None:
        row = await self.fetch_one(select(_RUN).where(_RUN.c.id == run_id))
        return TaskRun.model_validate(row._mapping) if row else None

    async def runs(self, *, status: RunStatus | None = None) -> list[TaskRun]:
        stmt = select(_RUN).order_by(_RUN.c.created_at)
        if status is not None:
            stmt = stmt.where(_RUN.c.status == status)
        return [TaskRun.model_validate(r._mapping) for r in await self.fetch_all(stmt)]

    async def set_run_status(self, run_id: str, *, status: RunStatus) -> None:
        async with self.transaction() as conn:
            await conn.execute(update(_RUN).where(_RUN.c.id == run_id).values(status=status))

    async def claim_conversation_index(self, run_id: str) -> int:
        def claim(conn: Connection) -> int:
            result = conn.execute(
                update(_RUN)
                .where(_RUN.c.id == run_id)
                .values(conversations_formed=_RUN.c.conversations_formed + 1)
                .returning(_RUN.c.conversations_formed)
            )
            return int(result.scalar_one()) - 1

        return int(await self._write(claim))

    # ---- workers ------------------------------------------------------------------------------

    async def worker_block(self, worker_id: str) -> str | None:
        """The reason a worker is blocked, or None."""
        row = await self.fetch_one(_WORKER_BLOCK, {"worker_id": worker_id})
        return str(row[1] or "blocked") if row and row[0] else None

    async def set_worker_block(self, worker_id: str, *, reason: str | None) -> None:
        async with self.transaction() as conn:
            found = await conn.execute(select(_WORKER.c.id).where(_WORKER.c.id == worker_id))
            values = {"blocked": reason is not None, "block_reason": reason or ""}
            if found.first() is None:
                await conn.execute(insert(_WORKER).values(id=worker_id, created_at=now(), **values))
            else:
                await conn.execute(update(_WORKER).where(_WORKER.c.id == worker_id).values(**values))

    # ---- agents -------------------------------------------------------------------------------

    async def agent_for_assignment(self, run_id: str, *, assignment_id: str) -> AgentRow | None:
        row = await self.fetch_one(_AGENT_BY_ASSIGNMENT, {"run_id": run_id, "assignment_id": assignment_id})
        return AgentRow.model_validate(row._mapping) if row else None

    async def create_agent(self, agent: AgentRow) -> AgentRow:
        """Insert a new agent; if the assignment already has one, return that instead."""
        values = agent.model_dump()
        try:
            await self._write(lambda conn: conn.execute(_INSERT_AGENT, values))
        except IntegrityError:
            existing = await self.agent_for_assignment(agent.run_id, assignment_id=agent.assignment_id)
            if existing is None:
                raise
            return existing
        return agent

    async def get_agent(self, agent_id: str) -> AgentRow | None:
        row = await self.fetch_one(_AGENT_BY_ID, {"agent_id": agent_id})
        return AgentRow.model_validate(row._mapping) if row else None

    async def agents(
        self, run_id: str, *, states: Iterable[AgentState] | None = None, worker_id: str | None = None
    ) -> list[AgentRow]:
        stmt = select(_AGENT).where(_AGENT.c.run_id == run_id).order_by(_AGENT.c.created_at)
        if states is not None:
            stmt = stmt.where(_AGENT.c.state.in_([s.value for s in states]))
        if worker_id is not None:
            stmt = stmt.where(_AGENT.c.worker_id == worker_id)
        return [AgentRow.model_validate(r._mapping) for r in await self.fetch_all(stmt)]

    async def worker_agents_in_run(self, worker_id: str, *, run_id: str) -> tuple[int, int]:
        """What a worker holds in a run, as the per-worker caps count it: (units of work done, under way or on
        the way; assignments open, i.e. agents whose page connected and that are still live). One lookup."""
        row = await self.fetch_one(_WORKER_AGENTS, {"worker_id": worker_id, "run_id": run_id})
        return int(row[0]), int(row[1])

    async def set_state(
        self,
        agent_id: str,
        target: AgentState,
        *,
        events: Sequence[Event] = (),
        role: str | None = None,
        conversation_id: str | None = None,
        on_commit: OnCommit = None,
    ) -> AgentRow:
        """Move an agent to `target` (refusing illegal moves) and append its events, in one transaction."""
        values: dict[str, Any] = {"state": target.value, "updated_at": now()}
        if role is not None:
            values["role"] = role
        if conversation_id is not None:
            values["conversation_id"] = conversation_id

        def move(conn: Connection) -> AgentRow:
            row = conn.execute(_AGENT_BY_ID, {"agent_id": agent_id}).first()
            if row is None:
                raise KeyError(f"no agent {agent_id}")
            agent = AgentRow.model_validate(row._mapping)
            transition(AgentState(agent.state), target)
            conn.execute(_UPDATE_AGENT, {**values, "agent_key": agent_id})
            self._insert_events(conn, events)
            return agent

        agent: AgentRow = await self._write(move, on_commit)
        return agent.model_copy(update=values)

    # ---- event streams ------------------------------------------------------------------------

    async def append_events(self, events: Sequence[Event], on_commit: OnCommit = None) -> None:
        await self._group.write(None, events, on_commit)

    async def head_seq(self, agent_id: str) -> int:
        row = await self.fetch_one(_HEAD_SEQ, {"agent_id": agent_id})
        return int(row[0] or 0)

    async def events_after(self, agent_id: str, seq: int, *, limit: int = 10_000) -> list[tuple[int, dict[str, Any]]]:
        rows = await self.fetch_all(_EVENTS_AFTER, {"agent_id": agent_id, "seq": seq, "limit": limit})
        return [(int(r[0]), dict(r[1])) for r in rows]

    # ---- messages -----------------------------------------------------------------------------

    async def message_for_client_id(self, agent_id: str, *, client_id: str) -> MessageRow | None:
        row = await self.fetch_one(_MESSAGE_BY_CLIENT_ID, {"agent_id": agent_id, "client_id": client_id})
        return MessageRow.model_validate(row._mapping) if row else None

    async def add_message(
        self, message: MessageRow | dict[str, Any], events: Sequence[Event] = (), on_commit: OnCommit = None
    ) -> None:
        """Store a message (a row, or its column values: the hot path skips the model) and the events that
        deliver it, together. Raises DuplicateMessage on a resend."""
        values = message.model_dump() if isinstance(message, MessageRow) else message
        try:
            await self._group.write(values, events, on_commit)
        except IntegrityError:
            agent_id, client_id = values.get("agent_id"), values.get("client_id")
            if agent_id and client_id:
                existing = await self.message_for_client_id(agent_id, client_id=client_id)
                if existing is not None:
                    raise DuplicateMessage(existing) from None
            raise

    async def messages(self, conversation_id: str) -> list[MessageRow]:
        rows = await self.fetch_all(
            select(_MESSAGE).where(_MESSAGE.c.conversation_id == conversation_id).order_by(_MESSAGE.c.created_at)
        )
        return [MessageRow.model_validate(r._mapping) for r in rows]

    async def message_exists(self, message_id: str) -> bool:
        return (await self.fetch_one(select(_MESSAGE.c.id).where(_MESSAGE.c.id == message_id))) is not None

    async def count_messages(self, run_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(_MESSAGE)
        if run_id is not None:
            stmt = stmt.where(_MESSAGE.c.run_id == run_id)
        return int((await self.fetch_one(stmt))[0])

    # ---- conversations ------------------------------------------------------------------------

    async def create_conversation(self, conversation: Conversation) -> Conversation:
        values = conversation.model_dump()
        await self._write(lambda conn: conn.execute(insert(_CONV).values(**values)))
        return conversation

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = await self.fetch_one(select(_CONV).where(_CONV.c.id == conversation_id))
        return Conversation.model_validate(row._mapping) if row else None

    async def conversations(
        self, run_id: str, *, states: Iterable[ConversationState] | None = None, kind: str | None = "task"
    ) -> list[Conversation]:
        stmt = select(_CONV).where(_CONV.c.run_id == run_id).order_by(_CONV.c.created_at)
        if states is not None:
            stmt = stmt.where(_CONV.c.state.in_([state.value for state in states]))
        if kind is not None:
            stmt = stmt.where(_CONV.c.kind == kind)
        return [Conversation.model_validate(r._mapping) for r in await self.fetch_all(stmt)]

    async def end_conversation(self, conversation_id: str, *, state: ConversationState, reason: str = "") -> None:
        stmt = update(_CONV).where(_CONV.c.id == conversation_id).values(
            state=state.value, end_reason=reason[:500], ended_at=now()
        )
        await self._write(lambda conn: conn.execute(stmt))

    # ---- onboarding and world data ------------------------------------------------------------

    async def onboarding_result(self, worker_id: str, *, task_name: str) -> OnboardingResult | None:
        row = await self.fetch_one(_ONBOARDING_OF, {"worker_id": worker_id, "task_name": task_name})
        return OnboardingResult.model_validate(row._mapping) if row else None

    async def record_onboarding(self, worker_id: str, *, task_name: str, passed: bool) -> OnboardingResult:
        table = _ONBOARDING
        where = (table.c.worker_id == worker_id, table.c.task_name == task_name)

        def record(conn: Connection) -> int:
            row = conn.execute(select(table).where(*where)).first()
            if row is None:
                conn.execute(insert(table).values(
                    worker_id=worker_id, task_name=task_name, passed=passed, attempts=1, updated_at=now()
                ))
                return 1
            attempts = int(row._mapping["attempts"]) + 1
            conn.execute(update(table).where(*where).values(passed=passed, attempts=attempts, updated_at=now()))
            return attempts

        attempts = int(await self._write(record))
        return OnboardingResult(worker_id=worker_id, task_name=task_name, passed=passed, attempts=attempts)

    async def save_world_data(self, conversation_id: str, *, run_id: str, data: dict[str, Any]) -> None:
        table = _WORLD

        def save(conn: Connection) -> None:
            found = conn.execute(select(table.c.conversation_id).where(table.c.conversation_id == conversation_id))
            if found.first() is None:
                conn.execute(
                    insert(table).values(conversation_id=conversation_id, run_id=run_id, data=data, updated_at=now())
                )
            else:
                conn.execute(
                    update(table).where(table.c.conversation_id == conversation_id).values(data=data, updated_at=now())
                )

        await self._write(save)

    async def world_data(self, conversation_id: str) -> dict[str, Any] | None:
        table = _WORLD
        row = await self.fetch_one(select(table.c.data).where(table.c.conversation_id == conversation_id))
        return dict(row[0]) if row else None
