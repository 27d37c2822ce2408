import asyncio

import pytest

from server.states import AgentState, IllegalTransition
from server.store import AgentRow, DuplicateMessage, MessageRow, Store


async def _agent(store: Store, agent_id: str = "g1") -> AgentRow:
    await store.ensure_run("r", task_module="worlds.qa_data_collection", options={})
    return await store.create_agent(AgentRow(
        id=agent_id, run_id="r", worker_id="w", assignment_id=f"A-{agent_id}", state=AgentState.JOINED,
    ))


async def test_a_second_agent_for_the_same_assignment_returns_the_first(store: Store) -> None:
    first = await _agent(store)
    again = await store.create_agent(AgentRow(id="other", run_id="r", worker_id="w", assignment_id="A-g1",
                                              state=AgentState.JOINED))
    assert again.id == first.id


async def test_a_resent_client_id_is_stored_once(store: Store) -> None:
    await _agent(store)
    row = MessageRow(id="m1", run_id="r", conversation_id="c", agent_id="g1", client_id="c1", sender="A", text="hi")
    await store.add_message(row, [("g1", 1, {"type": "message"})])
    with pytest.raises(DuplicateMessage) as info:
        await store.add_message(row.model_copy(update={"id": "m2"}), [("g1", 2, {"type": "message"})])
    assert info.value.message.id == "m1"
    assert await store.count_messages("r") == 1
    assert await store.head_seq("g1") == 1  # the duplicate's event was rolled back with it


async def test_an_illegal_state_change_writes_nothing(store: Store) -> None:
    await _agent(store)
    with pytest.raises(IllegalTransition):
        await store.set_state("g1", AgentState.DONE, events=[("g1", 1, {"type": "state"})])
    agent = await store.get_agent("g1")
    assert agent is not None and agent.state == AgentState.JOINED
    assert await store.head_seq("g1") == 0


async def test_events_replay_in_order_after_a_seq(store: Store) -> None:
    await _agent(store)
    await store.append_events([("g1", s, {"n": s}) for s in range(1, 6)])
    assert [s for s, _ in await store.events_after("g1", 2)] == [3, 4, 5]


async def test_onboarding_attempts_are_counted(store: Store) -> None:
    await store.record_onboarding("w", task_name="t", passed=False)
    result = await store.record_onboarding("w", task_name="t", passed=True)
    assert result.attempts == 2 and result.passed
    stored = await store.onboarding_result("w", task_name="t")
    assert stored is not None and stored.attempts == 2


async def test_the_token_secret_survives_a_new_store(store: Store) -> None:
    first = await store.secret()
    other = Store(store.url)
    try:
        assert await other.secret() == first
    finally:
        await other.close()


async def test_a_worker_is_counted_units_and_open_assignments_never_bare_claims(store: Store) -> None:
    await store.ensure_run("r", task_module="worlds.qa_data_collection", options={})
    await store.ensure_run("other", task_module="worlds.qa_data_collection", options={})
    agents = ("joined", "waiting", "worked", "in_task", "walked_out", "expired")
    for agent_id in agents:
        await store.create_agent(AgentRow(
            id=agent_id, run_id="r", worker_id="w", assignment_id=f"A-{agent_id}", state=AgentState.JOINED,
        ))
    await store.create_agent(AgentRow(id="b1", run_id="other", worker_id="w", assignment_id="A-b1",
                                      state=AgentState.JOINED))
    await store.create_agent(AgentRow(id="x1", run_id="r", worker_id="x", assignment_id="A-x1",
                                      state=AgentState.WAITING))
    for agent_id in ("waiting", "worked", "in_task", "walked_out", "expired"):
        await store.set_state(agent_id, AgentState.WAITING)
    for agent_id in ("worked", "in_task", "walked_out"):
        await store.set_state(agent_id, AgentState.IN_TASK, conversation_id=f"c-{agent_id}")
    await store.set_state("worked", AgentState.DONE)
    await store.set_state("walked_out", AgentState.TIMED_OUT)
    await store.set_state("expired", AgentState.WAITING_EXPIRED)
    # units: worked, in_task (a conversation entered, not walked out of) and waiting (on its way to one);
    # open: waiting and in_task. The bare claim counts for neither.
    assert await store.worker_agents_in_run("w", run_id="r") == (3, 2)
    assert await store.worker_agents_in_run("w", run_id="other") == (0, 0)
    assert await store.worker_agents_in_run("nobody", run_id="r") == (0, 0)


async def test_a_resend_in_a_busy_group_fails_alone_and_the_rest_commit_once(store: Store) -> None:
    await _agent(store, "g1")
    await _agent(store, "g2")
    first = MessageRow(id="m1", run_id="r", conversation_id="c", agent_id="g1", client_id="c1", sender="A", text="hi")
    await store.add_message(first, [("g1", 1, {"type": "message"})])
    resend = first.model_copy(update={"id": "m1-again"})
    other = MessageRow(id="m2", run_id="r", conversation_id="c", agent_id="g2", client_id="c1", sender="B", text="yo")
    # Queued in one loop pass, so one group holds them all: the resend's rows fail the group's bulk insert.
    results = await asyncio.gather(
        store.add_message(resend, [("g1", 2, {"type": "message"})]),
        store.add_message(other, [("g2", 1, {"type": "message"})]),
        store.set_state("g2", AgentState.WAITING, events=[("g2", 2, {"type": "state"})]),
        return_exceptions=True,
    )
    assert isinstance(results[0], DuplicateMessage) and results[0].message.id == "m1"
    assert results[1] is None and isinstance(results[2], AgentRow)
    assert [m.id for m in await store.messages("c")] == ["m1", "m2"]
    assert await store.head_seq("g1") == 1 and await store.head_seq("g2") == 2
    agent = await store.get_agent("g2")
    assert agent is not None and agent.state == AgentState.WAITING
