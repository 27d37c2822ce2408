"""Assignment sync: what MTurk says about a run's assignments becomes agent states.

Submitted on MTurk -> the agent is `submitted`; approved or rejected (by anyone, or MTurk's auto-approval)
-> `approved` / `rejected`; a HIT that is open again, or closed without this worker's work, means the
worker returned or abandoned it -> the agent departs as `returned`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from server.hits.publisher import epoch
from server.providers.mturk import MTurk, MTurkError
from server.states import AgentState, AssignmentStatus, HitStatus, IllegalTransition
from server.store import AgentRow, Store
from server.store.hits import HTML, HitRecord, HitStore

log = logging.getLogger(__name__)
S = AgentState
A = AssignmentStatus
ASSIGNMENT_STATES: dict[str, AgentState] = {A.SUBMITTED: S.SUBMITTED, A.APPROVED: S.APPROVED, A.REJECTED: S.REJECTED}
# Where an agent may be when its worker hands the HIT back without submitting it.
MAY_RETURN = frozenset({
    S.JOINED, S.ONBOARDING, S.WAITING, S.IN_TASK, S.DONE, S.PARTNER_LEFT, S.WAITING_EXPIRED, S.CLOSED,
    S.TIMED_OUT, S.DISCONNECTED, S.ONBOARDING_FAILED,
})
RETURNED_TEXT = "You returned this HIT (or its time ran out), so you have left the task."


async def expire_unworked(mturk: MTurk, hit_store: HitStore, record: HitRecord) -> None:
    """A HIT that closed with no work: recorded as expired, and deleted to keep the account's listing short."""
    assert record.hit_id is not None
    await hit_store.set_hit(record.token, status=HitStatus.EXPIRED)
    try:
        await mturk.call("DeleteHIT", HITId=record.hit_id)
    except MTurkError as exc:
        log.info("HIT %s stays listed: %s", record.hit_id, exc.message)


class AgentMoves(Protocol):
    """How the HIT manager changes an agent's state: through its run when served here, else the store."""

    async def move(self, run_id: str, agent: AgentRow, state: AgentState, text: str | None = None) -> bool: ...


class StoreMoves:
    """Moves for a process that serves no run (the CLI): the database only, no stream event."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def move(self, run_id: str, agent: AgentRow, state: AgentState, text: str | None = None) -> bool:
        try:
            await self.store.set_state(agent.id, state)
        except IllegalTransition:
            return False
        return True


class AssignmentSync:
    def __init__(self, mturk: MTurk, hit_store: HitStore, store: Store, moves: AgentMoves) -> None:
        self.mturk = mturk
        self.hit_store = hit_store
        self.store = store
        self.moves = moves

    async def settle(self, records: Iterable[HitRecord]) -> None:
        """Closed HITs: find their work (submitted) or learn there was none (expired, then deleted)."""
        now = time.time()
        for record in records:
            if record.hit_id is None:
                continue
            if record.status == HitStatus.CLOSED or (
                record.status == HitStatus.SUBMITTED and record.auto_approve_at and record.auto_approve_at <= now
            ):
                await self._settle(record)

    async def _settle(self, record: HitRecord) -> None:
        assert record.hit_id is not None
        work = [a async for a in self.mturk.pages("ListAssignmentsForHIT", "Assignments", HITId=record.hit_id)]
        if not work:
            await expire_unworked(self.mturk, self.hit_store, record)
            return
        await self.record_assignment(record, work[-1])

    async def record_assignment(self, record: HitRecord, assignment: dict[str, Any]) -> None:
        status = str(assignment["AssignmentStatus"])
        if record.question == HTML:  # a form HIT's assignments are rows of their own (see hits/forms.py)
            await self.hit_store.set_form_status(
                assignment["AssignmentId"], status=status, auto_approve_at=epoch(assignment.get("AutoApprovalTime"))
            )
            return
        await self.hit_store.set_hit(
            record.token, status=HitStatus.SUBMITTED if status == A.SUBMITTED else HitStatus.REVIEWED,
            assignment_id=assignment["AssignmentId"], worker_id=assignment["WorkerId"], assignment_status=status,
            auto_approve_at=epoch(assignment.get("AutoApprovalTime")),
        )

    async def agents(self, run_id: str, listed_at: float) -> None:
        """Move the run's agents to what their HITs' records say."""
        records = await self.hit_store.hits(run_id)
        by_hit = {r.hit_id: r for r in records if r.hit_id}
        by_assignment = {r.assignment_id: r for r in records if r.assignment_id}
        for agent in await self.store.agents(run_id):
            state = AgentState(agent.state)
            done = by_assignment.get(agent.assignment_id)
            if done is not None:
                target = ASSIGNMENT_STATES.get(done.assignment_status)
                if target is not None and target != state:
                    await self.walk(run_id, agent, state, target)
                continue
            record = by_hit.get(agent.hit_id)
            if (
                record is not None and state in MAY_RETURN and agent.created_at < listed_at
                and record.status not in (HitStatus.CREATING, HitStatus.TAKEN)
            ):
                log.info("run %s: worker %s returned or abandoned HIT %s", run_id, agent.worker_id, agent.hit_id)
                await self.moves.move(run_id, agent, S.RETURNED, RETURNED_TEXT)

    async def walk(self, run_id: str, agent: AgentRow, state: AgentState, target: AgentState) -> None:
        """Submitted comes before approved or rejected; a page that never said `submit` still gets there."""
        if target in (S.APPROVED, S.REJECTED) and state != S.SUBMITTED and state != S.REJECTED:
            if not await self.moves.move(run_id, agent, S.SUBMITTED):
                return
        await self.moves.move(run_id, agent, target)
