"""Failures are part of the flow: reconnects, partners who leave, timeouts, failed onboarding, a world raising."""

import asyncio
from pathlib import Path

import pytest

from server.store import Store
from tests.conftest import TEST_RUNS, make_settings
from tests.support.client import Crowd, JoinRefused, Worker
from tests.support.server import LiveServer, serve


async def _pair(crowd: Crowd, run: str = "chat") -> tuple[Worker, Worker]:
    a = await crowd.start(run, "W-a")
    await a.wait_state("waiting")
    b = await crowd.start(run, "W-b")
    await asyncio.gather(a.wait_state("in_task"), b.wait_state("in_task"))
    return a, b


async def test_a_reconnect_mid_conversation_loses_and_duplicates_nothing(live: LiveServer, crowd: Crowd) -> None:
    a, b = await _pair(crowd)
    await a.wait_turn(1)
    await a.say("first from a")
    await b.wait_turn(1)
    seen_before = b.last_seq
    await b.abort()  # the partner's connection dies without a close handshake

    await b.connect()  # resumes from its last seq
    await b.say("first from b")
    await a.wait_frame(lambda f: f.get("text") == "first from b")
    await a.wait_turn(2)
    await a.say("second from a")
    await b.wait_frame(lambda f: f.get("text") == "second from a")

    assert b.duplicates == 0 and not b.gaps
    assert sorted(b.events) == list(range(1, b.last_seq + 1))  # gap-free across the reconnect
    assert b.last_seq > seen_before
    texts = [m["text"] for m in b.chat() if m["kind"] == "chat"]
    assert texts == ["first from a", "first from b", "second from a"]


async def test_a_resent_message_is_acked_again_and_stored_once(store: Store, live: LiveServer, crowd: Crowd) -> None:
    a, b = await _pair(crowd)
    await a.wait_turn(1)
    client_id = await a.say("only once")
    echo = await a.wait_stored(client_id)
    assert echo["type"] == "message" and "seq" in echo  # the echo in its stream is a message's ack
    await a.drop()
    await a.connect()
    before = len(a.frames)
    await a.say("only once", client_id=client_id)  # the page resends what it believes unacked
    again = await a.wait_frame(lambda f: f["type"] == "ack" and f["client_id"] == client_id, after=before)
    assert again["message_id"] == echo["message_id"]
    await b.wait_frame(lambda f: f.get("text") == "only once")
    agent = await store.get_agent(a.agent_id)
    assert agent is not None
    stored = [m for m in await store.messages(agent.conversation_id) if m.text == "only once"]
    assert len(stored) == 1
    assert [m["text"] for m in b.chat() if m["kind"] == "chat"] == ["only once"]


async def test_a_page_reload_replays_the_whole_stream_from_zero(live: LiveServer, crowd: Crowd) -> None:
    a, _b = await _pair(crowd)
    await a.wait_turn(1)
    await a.wait_stored(await a.say("hello"))
    expected = [a.events[s] for s in sorted(a.events)]
    reloaded = crowd.worker("chat", "W-a", a.assignment_id)
    reloaded.resume_key = a.resume_key  # the page keeps its assignment's key across a reload
    await reloaded.join()  # the same assignment gets the same agent back
    assert reloaded.agent_id == a.agent_id
    await reloaded.connect(last_seq=0)
    await reloaded.wait_frame(lambda f: f.get("seq") == len(expected))
    assert [reloaded.events[s] for s in sorted(reloaded.events)][: len(expected)] == expected
    assert await a.wait_closed() == 4409  # the older tab is told it was replaced


async def test_a_partner_who_leaves_frees_the_other_to_submit(store: Store, live: LiveServer, crowd: Crowd) -> None:
    a, b = await _pair(crowd)
    await a.wait_turn(1)
    await a.drop()
    left = await b.wait_state("partner_left", timeout=10)
    assert left["can_submit"] is True
    assert "partner left" in left["text"]
    await b.send({"type": "submit"})
    await b.wait_state("submitted")
    agent = await store.get_agent(a.agent_id)
    assert agent is not None and agent.state == "disconnected"
    conversation = await store.get_conversation(agent.conversation_id)
    assert conversation is not None and conversation.state == "partner_left"


async def test_a_worker_who_does_not_answer_times_out_and_the_partner_can_submit(
    live: LiveServer, crowd: Crowd
) -> None:
    a, b = await _pair(crowd)
    await a.wait_turn(1)  # a never answers; the test task's turn timeout is 5 s
    timed_out = await a.wait_state("timed_out", timeout=10)
    assert timed_out["can_submit"] is False
    assert (await b.wait_state("partner_left"))["can_submit"] is True


async def test_a_lonely_worker_is_released_from_the_waiting_room(live: LiveServer, crowd: Crowd) -> None:
    a = await crowd.start("chat-short", "W-alone")
    await a.wait_state("waiting")
    expired = await a.wait_state("waiting_expired", timeout=5)
    assert expired["can_submit"] is True
    assert "No partner arrived" in expired["text"]


async def test_a_failed_onboarding_is_told_why_and_refused_on_retry(live: LiveServer, crowd: Crowd) -> None:
    w = await crowd.start("gated", "W-gated")
    turn = await w.wait_turn(1)
    assert turn["widget"]["kind"] == "choice"
    await w.say("green", {"choice": "green"})
    failed = await w.wait_state("onboarding_failed")
    assert "did not pass" in failed["text"]
    with pytest.raises(JoinRefused) as refused:
        await crowd.worker("gated", "W-gated").join()
    assert refused.value.code == "onboarding_failed"
    assert "return this HIT" in refused.value.message


async def test_a_passed_onboarding_is_remembered_for_the_next_assignment(live: LiveServer, crowd: Crowd) -> None:
    w = await crowd.start("gated", "W-good")
    await w.wait_turn(1)
    await w.say("blue", {"choice": "blue"})
    await w.wait_turn(2)
    await w.say("anything")
    await w.wait_state("done")
    again = await crowd.start("gated", "W-good")
    first = await again.wait_turn(1)
    assert first["prompt"] == "Say anything."  # straight into the task, no second onboarding


async def test_a_world_that_raises_closes_the_conversation_and_lets_the_worker_submit(
    live: LiveServer, crowd: Crowd
) -> None:
    w = await crowd.start("crashing", "W-crash")
    await w.wait_turn(1)
    await w.say("go")
    closed = await w.wait_state("closed")
    assert closed["can_submit"] is True
    assert "went wrong on our side" in closed["text"]
    # the server is still serving
    other = await crowd.start("crashing", "W-crash-2")
    await other.wait_turn(1)


async def test_an_open_turn_is_sent_again_after_a_reconnect_and_an_answered_one_is_not(
    live: LiveServer, crowd: Crowd
) -> None:
    a, b = await _pair(crowd)
    turn = await a.wait_turn(1)
    await a.drop()
    before = len(a.frames)
    await a.connect()
    again = await a.wait_frame(lambda f: f["type"] == "turn", after=before)
    assert again["turn_id"] == turn["turn_id"] and "seq" not in again  # the same turn, live, not an event
    assert len(a.turns) == 1

    await a.wait_stored(await a.say("answered"))
    await b.wait_turn(1)
    await a.drop()
    before = len(a.frames)
    await a.connect()
    await a.send({"type": "ping"})  # answered after the attach is done: anything it sent came first
    await a.wait_frame(lambda f: f["type"] == "pong", after=before)
    assert [f for f in a.frames[before:] if f["type"] == "turn"] == []


async def test_a_socket_silent_for_three_heartbeats_is_closed_and_the_page_can_resume(
    db_url: str, tmp_path: Path
) -> None:
    # A 0.5 s heartbeat: a socket silent for 1.5 s is closed. Short enough for a quick test; a 0.2 s one
    # (closed after 0.6 s) left too little room for a busy 2-core machine, and this test timed out in CI.
    beat = 0.5
    settings = make_settings(db_url, tmp_path, TEST_RUNS).model_copy(update={"heartbeat_s": beat})
    with serve(settings) as server:
        crowd = Crowd(server.base)
        try:
            quiet = await crowd.start("chat", "W-quiet")  # the test client sends no heartbeat unless told to
            assert await quiet.wait_closed(timeout=30.0) == 4408
            quiet.heartbeat_s = beat
            await quiet.connect()  # resumes, and pings from now on
            await quiet.wait_state("waiting", timeout=30.0)
            chatty = crowd.worker("chat", "W-chatty")
            chatty.heartbeat_s = beat
            await chatty.start()
            await chatty.wait_state("in_task", timeout=30.0)
            await asyncio.sleep(beat * 3 + 0.5)  # the time under test: past the limit, sockets that ping stay open
            assert quiet.closed_code is None and chatty.closed_code is None
        finally:
            await crowd.close()
