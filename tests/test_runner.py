"""The runner without FastAPI or a network: a Run driven through fake sockets."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from server import waiting_room
from server.channel import Disconnected
from server.claims import Refusal
from server.protocol import JoinRequest, Say
from server.runner import Run
from server.states import AgentState
from server.store import Store
from server.tokens import TokenSigner
from tests.support.inproc import Page
from tests.support.inproc import arrive as _arrive
from tests.support.inproc import start_run as _run
from tests.support.tasks import chat
from worlds.base import Caps


@pytest.fixture
async def run(store: Store) -> AsyncIterator[Run]:
    r = await _run(store, chat())
    try:
        yield r
    finally:
        await r.stop()


async def _paired(store: Store, *, reconnect_grace: float) -> tuple[Run, tuple[str, Page], tuple[str, Page]]:
    """A run of the chat task with this reconnect grace, and two workers in one conversation."""
    task = chat()
    task.timeouts = replace(task.timeouts, reconnect_grace=reconnect_grace)
    run = await _run(store, task)
    a, page_a = await _arrive(run, "w1")
    await page_a.wait("state", state="waiting")
    b, page_b = await _arrive(run, "w2")
    await page_a.wait("state", state="in_task")
    await page_b.wait("state", state="in_task")
    return run, (a, page_a), (b, page_b)


async def test_two_waiting_workers_are_matched_into_one_conversation(run: Run) -> None:
    a, page_a = await _arrive(run, "w1")
    await page_a.wait("state", state="waiting")
    b, page_b = await _arrive(run, "w2")
    await page_a.wait("state", state="in_task")
    await page_b.wait("state", state="in_task")
    assert run.humans[a].conversation_id == run.humans[b].conversation_id
    assert {run.humans[a].role, run.humans[b].role} == {"Speaker 1", "Speaker 2"}
    assert not run.waiting


async def test_the_conversation_cap_keeps_extra_workers_waiting(store: Store) -> None:
    task = chat()
    task.caps = replace(task.caps, max_conversations=1)
    run = await _run(store, task)
    try:
        pages = [await _arrive(run, f"w{i}") for i in range(4)]
        await pages[0][1].wait("state", state="in_task")
        await pages[1][1].wait("state", state="in_task")
        await pages[2][1].wait("state", state="waiting")
        await pages[3][1].wait("state", state="waiting")
        assert len(run.host.live) == 1
        assert set(run.waiting) == {pages[2][0], pages[3][0]}
    finally:
        await run.stop()


async def test_the_waiting_room_cap_refuses_with_a_reason(store: Store) -> None:
    task = chat()
    task.caps = Caps(max_conversations=0, max_waiting=1)
    run = await _run(store, task)
    try:
        _, page = await _arrive(run, "w1")
        await page.wait("state", state="waiting")
        with pytest.raises(Refusal) as refused:
            await _arrive(run, "w2")
        assert refused.value.code == "waiting_room_full"
    finally:
        await run.stop()


async def test_a_worker_who_never_connects_is_released_after_the_grace_period(run: Run) -> None:
    agent = (await run.join(JoinRequest(assignment_id="A-ghost", worker_id="ghost"))).agent
    for _ in range(100):
        if agent.id not in run.humans:
            break
        await asyncio.sleep(0.05)  # polling the state with a bound: the grace timer has no event to await
    row = await run.store.get_agent(agent.id)
    assert row is not None and row.state == AgentState.DISCONNECTED
    assert agent.id not in run.humans and agent.id not in run.states  # gone: the run holds only live agents


async def test_a_message_out_of_turn_is_not_stored(run: Run, store: Store) -> None:
    a, page = await _arrive(run, "w1")
    await page.wait("state", state="waiting")
    await run.receive(a, Say(type="message", client_id="c1", text="hello?"))
    error = await page.wait("error")
    assert error["code"] == "not_your_turn"
    assert await store.count_messages("r") == 0


async def test_a_restart_closes_the_live_conversations_of_a_task_that_is_not_replayable(store: Store) -> None:
    """A task that does not declare its world replayable: its conversations end at a restart, and their
    workers may submit (tests/test_replay.py has the conversations that continue)."""
    not_replayable = replace(chat(), replayable=False)
    run = await _run(store, not_replayable)
    a, _page_a = await _arrive(run, "w1")
    _b, page_b = await _arrive(run, "w2")
    await page_b.wait("state", state="in_task")
    await run.stop()  # the process dies; the database is what remains

    again = await _run(store, not_replayable)
    try:
        row = await store.get_agent(a)
        assert row is not None and row.state == AgentState.CLOSED
        page = Page()
        await again.connect(a, page, 0)
        closed = await page.wait("state", state="closed")
        assert closed["can_submit"] is True
        assert "restarted" in closed["text"]
        conversations = await store.conversations("r")
        assert [c.state for c in conversations] == ["closed"]
    finally:
        await again.stop()


async def test_a_page_resuming_ahead_of_its_stream_is_refused(run: Run) -> None:
    agent = (await run.join(JoinRequest(assignment_id="A-x", worker_id="wx"))).agent
    with pytest.raises(Disconnected):
        await run.connect(agent.id, Page(), 99)


async def test_a_worker_reconnecting_while_being_paired_is_paired_once(run: Run) -> None:
    """A page that reconnects between the pick and the pairing's commit must not put its worker back in the
    waiting room: picked twice, it would sit in two conversations and leave both partners stranded."""
    a, page_a = await _arrive(run, "w1")
    await page_a.wait("state", state="waiting")
    groups: list[set[str]] = []
    picked, release = asyncio.Event(), asyncio.Event()
    form = run.host.form

    async def held_form(agent_ids: list[str]) -> None:
        groups.append(set(agent_ids))
        if len(groups) == 1:  # hold the first pairing between its pick and its writes
            picked.set()
            await release.wait()
        await form(agent_ids)

    run.host.form = held_form  # type: ignore[method-assign]
    b, page_b = await _arrive(run, "w2")
    await asyncio.wait_for(picked.wait(), 5)
    page_a2 = Page()
    await run.connect(a, page_a2, 2)  # the page of w1 reconnects in that instant
    await page_a2.wait("welcome")
    c, page_c = await _arrive(run, "w3")
    await page_c.wait("state", state="waiting")
    d, page_d = await _arrive(run, "w4")
    release.set()
    await page_c.wait("state", state="in_task")
    assert groups == [{a, b}, {c, d}]
    await page_d.wait("state", state="in_task")
    await page_b.wait("state", state="in_task")
    await page_a2.wait("state", state="in_task")
    assert run.humans[a].conversation_id == run.humans[b].conversation_id
    assert run.humans[c].conversation_id == run.humans[d].conversation_id != run.humans[a].conversation_id


async def test_a_pairing_the_store_fails_before_it_starts_returns_both_to_the_waiting_room(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting_room, "PAIRING_RETRY_S", 0.3)
    claimed_at: list[float] = []
    claim = run.store.claim_conversation_index

    async def failing_once(run_id: str) -> int:
        claimed_at.append(asyncio.get_running_loop().time())
        if len(claimed_at) == 1:
            raise RuntimeError("database unavailable")
        return await claim(run_id)

    run.store.claim_conversation_index = failing_once  # type: ignore[method-assign]
    a, page_a = await _arrive(run, "w1")
    b, page_b = await _arrive(run, "w2")
    await page_a.wait("state", state="in_task")
    await page_b.wait("state", state="in_task")
    assert len(claimed_at) == 2  # the first pairing failed; the second, from the waiting room, went through
    assert claimed_at[1] - claimed_at[0] >= 0.3  # after a pause: a failing store is not retried in a tight loop
    assert run.humans[a].conversation_id == run.humans[b].conversation_id


async def test_a_pairing_the_store_fails_halfway_ends_its_conversation_and_lets_both_submit(
    run: Run, store: Store
) -> None:
    move = run.move
    failed: list[str] = []

    async def failing_move(agent_id: str, target: AgentState, **kw: Any) -> bool:
        if target == AgentState.IN_TASK and not failed:
            failed.append(agent_id)
            raise RuntimeError("database unavailable")
        return await move(agent_id, target, **kw)

    run.move = failing_move  # type: ignore[method-assign]
    a, page_a = await _arrive(run, "w1")
    b, page_b = await _arrive(run, "w2")
    closed_a = await page_a.wait("state", state="closed")
    closed_b = await page_b.wait("state", state="closed")
    assert closed_a["can_submit"] and closed_b["can_submit"]
    assert failed[0] in (a, b) and run.states[a] == run.states[b] == AgentState.CLOSED
    [conv] = await store.conversations("r")
    assert conv.state == "failed" and not run.host.live


async def test_a_turn_cancelled_under_a_running_world_still_ends_its_conversation(run: Run) -> None:
    a, page_a = await _arrive(run, "w1")
    b, page_b = await _arrive(run, "w2")
    await page_a.wait("state", state="in_task")
    await page_b.wait("state", state="in_task")
    first = a if run.humans[a].role == "Speaker 1" else b
    await (page_a if first == a else page_b).wait("turn")
    run.humans[first].end_turn("a test ended it")  # a world that lets TurnEnded out still ends; nobody is stuck
    closed_a = await page_a.wait("state", state="closed")
    closed_b = await page_b.wait("state", state="closed")
    assert closed_a["can_submit"] and closed_b["can_submit"]
    assert not run.host.live


async def test_a_state_change_waits_for_a_late_lease_renewal_instead_of_stranding_the_worker(store: Store) -> None:
    """A busy machine renews the lease late: the fence is out of time for a moment, though nobody else took
    the run. The worker's move to the waiting room happens once the lease is renewed, not never."""
    row = await store.ensure_run("r", task_module="tests.support.tasks:chat", options={})
    in_time = True
    run = Run(row, chat(), store=store, signer=TokenSigner("k", 60), heartbeat_s=5, fence=lambda _r: in_time)
    await run.start()
    try:
        in_time = False  # the renewal is late
        agent, page = await _arrive(run, "w-late")
        await asyncio.sleep(0.3)
        assert not [f for f in page.frames if f["type"] == "state" and f["state"] == "waiting"]
        in_time = True  # renewed: the run was still ours
        await page.wait("state", state="waiting")
        assert run.states[agent] == AgentState.WAITING
    finally:
        await run.stop()


async def test_partners_whose_graces_run_out_while_the_conversation_ends_both_leave_cleanly(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Both pages vanish: the first grace ends the conversation; the second runs out while that ending is
    being written, so the second worker leaves (and is let go) before the ending reaches them. The ending
    must still complete for everyone, with no failed background task."""
    run, (a, page_a), (b, page_b) = await _paired(store, reconnect_grace=0.3)
    try:
        end_conversation = run.store.end_conversation

        async def slow_end(*args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(0.6)  # a busy database: the second grace runs out meanwhile
            await end_conversation(*args, **kwargs)

        run.store.end_conversation = slow_end  # type: ignore[method-assign]
        await run.disconnect(a, page_a)
        await asyncio.sleep(0.2)
        await run.disconnect(b, page_b)
        for _ in range(100):  # both departures written, within 5 s
            rows = [await store.get_agent(x) for x in (a, b)]
            if all(r is not None and r.state == AgentState.DISCONNECTED for r in rows):
                break
            await asyncio.sleep(0.05)
        assert [r.state for r in rows if r is not None] == [AgentState.DISCONNECTED, AgentState.DISCONNECTED]
        await asyncio.sleep(0.8)  # the first ending finishes its loop
        failures = [r for r in caplog.records if "failed" in r.getMessage() and r.levelname == "ERROR"]
        assert failures == [], [r.getMessage() for r in failures]
    finally:
        await run.stop()


async def test_a_page_whose_socket_died_on_a_send_is_still_given_its_grace_and_its_partner_told(
    store: Store,
) -> None:
    """A tab closes just as the server sends to it: the send fails first and drops the socket, then the
    socket's reader sees the close. That close is still the page leaving: the partner is told at once and
    the grace runs (before, the reader's close was taken for a socket already replaced, and the leaver was
    left in the conversation with no grace: the partner waited for a turn that never came)."""
    run, (_, page_a), (b, page_b) = await _paired(store, reconnect_grace=0.3)
    try:

        async def gone(_data: str) -> None:
            raise Disconnected(1006)

        page_b.send_text = gone  # type: ignore[method-assign]
        await run.humans[b].channel.send_ephemeral({"type": "pong"})  # the send that finds it gone
        assert not run.humans[b].channel.attached
        await run.disconnect(b, page_b)  # then its reader sees the close
        presence = await page_a.wait("presence", present=False)
        assert presence["sender"] == run.humans[b].role
        await page_a.wait("state", state="partner_left")  # the grace ran out: the partner may submit
        row = await store.get_agent(b)
        assert row is not None and row.state == AgentState.DISCONNECTED
    finally:
        await run.stop()
