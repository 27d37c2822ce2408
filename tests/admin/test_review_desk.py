"""Review of work on a HIT Parley published goes through the HIT manager's Review; bonuses pay once per key."""

from __future__ import annotations

from typing import Any

import pytest

from server.admin.actions import ReviewDesk, ReviewRefused
from server.hits.plan import hit_token
from server.states import AgentState, HitStatus
from server.store import AgentRow, Store
from server.store.hits import HitPlan, HitStore
from server.store.review import ReviewStore


class FakeMTurkReview:
    """Records calls as the HIT manager's Review would receive them; approves by moving the agent."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[tuple[Any, ...]] = []

    async def approve(self, assignment_id: str, feedback: str = "", *, override_rejection: bool = False) -> None:
        self.calls.append(("approve", assignment_id, feedback))
        agent = await self.store.agent_for_assignment("run-1", assignment_id=assignment_id)
        assert agent is not None
        await self.store.set_state(agent.id, AgentState.APPROVED)

    async def reject(self, assignment_id: str, reason: str) -> None:
        self.calls.append(("reject", assignment_id, reason))

    async def bonus(self, assignment_id: str, amount: str | float, reason: str, *, key: str = "") -> None:
        self.calls.append(("bonus", assignment_id, amount, reason, key))

    async def block(self, worker_id: str, reason: str) -> None:
        self.calls.append(("block", worker_id, reason))


async def _submitted_agent_on_a_hit(store: Store) -> AgentRow:
    await store.ensure_run("run-1", task_module="tests.support.tasks:qa", options={})
    agent = await store.create_agent(AgentRow(
        id="agent-1", run_id="run-1", worker_id="W1", assignment_id="ASSIGN-1", state=AgentState.JOINED,
    ))
    for state in (AgentState.WAITING, AgentState.IN_TASK, AgentState.DONE, AgentState.SUBMITTED):
        await store.set_state(agent.id, state)
    hits = HitStore(store)
    await hits.save_plan(HitPlan(run_id="run-1", account="test", reward_cents=100))
    record = await hits.reserve_hit("run-1", 120, lambda slot: hit_token("run-1", slot))
    await hits.set_hit(
        record.token, hit_id="HIT-1", status=HitStatus.SUBMITTED, assignment_id="ASSIGN-1", worker_id="W1"
    )
    return agent


async def test_work_on_a_published_hit_is_approved_through_mturk(store: Store) -> None:
    agent = await _submitted_agent_on_a_hit(store)
    mturk = FakeMTurkReview(store)
    outcome = await ReviewDesk(store=store, runs=None, mturk=mturk).approve(agent.id, feedback="Nice")
    assert (outcome.via, outcome.state) == ("mturk", "approved")
    assert mturk.calls == [("approve", "ASSIGN-1", "Nice")]


async def test_a_bonus_with_the_same_key_is_paid_and_recorded_once(store: Store) -> None:
    agent = await _submitted_agent_on_a_hit(store)
    mturk = FakeMTurkReview(store)
    desk = ReviewDesk(store=store, runs=None, mturk=mturk)
    first = await desk.bonus(agent.id, amount_cents=50, reason="Great chat", key="k1")
    again = await desk.bonus(agent.id, amount_cents=50, reason="Great chat", key="k1")
    other = await desk.bonus(agent.id, amount_cents=50, reason="Great chat", key="k2")
    assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
    assert [c[:4] for c in mturk.calls] == [("bonus", "ASSIGN-1", "0.50", "Great chat")] * 2
    actions = await ReviewStore(store).actions_for([agent.id])
    assert [(a.action, a.amount_cents) for a in actions] == [("bonus", 50), ("bonus", 50)]


async def test_bonus_amounts_and_reasons_are_checked_before_mturk_is_asked(store: Store) -> None:
    agent = await _submitted_agent_on_a_hit(store)
    mturk = FakeMTurkReview(store)
    desk = ReviewDesk(store=store, runs=None, mturk=mturk)
    for amount, reason in ((0, "x"), (-5, "x"), (100_01, "x"), (50, " ")):
        with pytest.raises(ReviewRefused):
            await desk.bonus(agent.id, amount_cents=amount, reason=reason)
    assert mturk.calls == []


async def test_block_sets_parley_s_block_and_the_mturk_soft_block(store: Store) -> None:
    mturk = FakeMTurkReview(store)
    await ReviewDesk(store=store, runs=None, mturk=mturk).block("AW9", reason="spam")
    assert await store.worker_block("AW9") == "spam"
    assert mturk.calls == [("block", "AW9", "spam")]
