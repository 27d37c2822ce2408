"""Channel: gap-free durable stream, replay on attach, no advance on a failed write. No FastAPI here."""

import asyncio
import gc
import json
from typing import Any

import pytest

from server import channel as channel_module
from server.channel import Channel, Disconnected
from server.states import AgentState
from server.store import AgentRow, Store


class FakeSocket:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.fail = fail

    async def send_text(self, data: str) -> None:
        if self.fail:
            raise Disconnected(1006)
        self.sent.append(json.loads(data))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.sent if "seq" in f]


@pytest.fixture
async def channel(store: Store) -> Channel:
    await store.ensure_run("r", task_module="m", options={})
    await store.create_agent(AgentRow(id="g", run_id="r", worker_id="w", assignment_id="a", state=AgentState.JOINED))
    return await Channel.load("g", store)


async def test_events_are_numbered_without_gaps_and_stored_before_sending(channel: Channel, store: Store) -> None:
    socket = FakeSocket()
    await channel.attach(socket, 0, {"type": "welcome"})
    await channel.emit([{"type": "state", "n": 1}, {"type": "state", "n": 2}])
    await channel.emit([{"type": "state", "n": 3}])
    assert socket.seqs() == [1, 2, 3]
    assert [s for s, _ in await store.events_after("g", 0)] == [1, 2, 3]


async def test_attaching_replays_exactly_what_the_page_missed(channel: Channel) -> None:
    await channel.emit([{"type": "state", "n": n} for n in range(1, 6)])
    socket = FakeSocket()
    await channel.attach(socket, 3, {"type": "welcome"})
    await channel.emit([{"type": "state", "n": 6}])
    assert socket.sent[0]["type"] == "welcome" and socket.sent[0]["head_seq"] == 5
    assert socket.seqs() == [4, 5, 6]


async def test_a_failed_write_takes_no_sequence_number(channel: Channel) -> None:
    async def broken(_events: Any, _on_commit: Any) -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        await channel.emit([{"type": "state"}], write=broken)
    assert await channel.emit([{"type": "state"}]) == [1]


async def test_a_newer_socket_replaces_and_closes_the_older(channel: Channel) -> None:
    old, new = FakeSocket(), FakeSocket()
    await channel.attach(old, 0, {"type": "welcome"})
    await channel.attach(new, 0, {"type": "welcome"})
    assert old.closed is not None and old.closed[0] == 4409
    await channel.emit([{"type": "state"}])
    assert new.seqs() == [1] and old.seqs() == []


async def test_a_dead_socket_is_dropped_and_the_event_is_kept_for_resume(channel: Channel) -> None:
    dead = FakeSocket(fail=True)
    channel._socket = dead  # as if attach had succeeded before the connection died
    await channel.emit([{"type": "state"}])
    assert not channel.attached
    fresh = FakeSocket()
    await channel.attach(fresh, 0, {"type": "welcome"})
    assert fresh.seqs() == [1]


async def test_a_socket_dropped_by_a_failed_send_is_still_detached_by_its_reader_unless_replaced(
    channel: Channel,
) -> None:
    dead = FakeSocket()
    await channel.attach(dead, 0, {"type": "welcome"})
    dead.fail = True
    await channel.emit([{"type": "state"}])  # the send finds the page gone, and drops the socket
    assert not channel.attached
    assert await channel.detach(dead)  # its reader's close: the page left (the runner starts its grace)
    assert not await channel.detach(dead)  # once

    again = FakeSocket()
    await channel.attach(again, 0, {"type": "welcome"})
    again.fail = True
    await channel.emit([{"type": "state"}])
    newer = FakeSocket()
    await channel.attach(newer, 0, {"type": "welcome"})
    assert not await channel.detach(again)  # a newer socket came first: not this page leaving
    assert channel.is_attached(newer)


async def test_resuming_ahead_of_the_stream_is_refused(channel: Channel) -> None:
    socket = FakeSocket()
    with pytest.raises(Disconnected):
        await channel.attach(socket, 7, {"type": "welcome"})
    assert socket.sent[0]["code"] == "bad_resume"


async def test_concurrent_emits_stay_gap_free(channel: Channel) -> None:
    socket = FakeSocket()
    await channel.attach(socket, 0, {"type": "welcome"})
    await asyncio.gather(*(channel.emit([{"type": "state", "n": n}]) for n in range(50)))
    assert socket.seqs() == list(range(1, 51))


async def test_a_write_that_commits_while_its_caller_is_cancelled_still_takes_its_number(channel: Channel) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    committed: list[Any] = []

    async def slow(events: Any, on_commit: Any) -> None:
        # A writer as the store's group commit is: once its group is in flight, a cancelled caller waits
        # for the commit, which calls back, and only then sees the cancellation.
        started.set()

        async def group() -> None:
            await release.wait()
            committed.extend(events)
            on_commit()

        flight = asyncio.ensure_future(group())
        try:
            await asyncio.shield(flight)
        except asyncio.CancelledError:
            await flight
            raise

    emit = asyncio.create_task(channel.emit([{"type": "state"}], write=slow))
    await started.wait()
    emit.cancel()  # e.g. the world is stopped while its message is being stored
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await emit
    assert [seq for _, seq, _ in committed] == [1]
    assert await channel.emit([{"type": "state"}]) == [2]  # never reuses the committed number


async def test_an_open_turn_follows_the_replay_of_every_attach_until_it_is_closed(
    channel: Channel, store: Store
) -> None:
    await channel.emit([{"type": "state", "n": 1}])
    await channel.open_turn({"type": "turn", "turn_id": "t1", "prompt": "Say", "timeout_s": 60.0})  # no socket yet
    first = FakeSocket()
    await channel.attach(first, 0, {"type": "welcome"})
    assert [f["type"] for f in first.sent] == ["welcome", "state", "turn"]  # after the replay, never before
    assert "seq" not in first.sent[-1] and 59.0 < first.sent[-1]["timeout_s"] <= 60.0  # what is left of it

    second = FakeSocket()
    await channel.attach(second, 1, {"type": "welcome"})
    assert [f["type"] for f in second.sent] == ["welcome", "turn"] and second.sent[-1]["turn_id"] == "t1"

    channel.close_turn("other")  # another turn's close leaves this one open
    channel.close_turn("t1")
    third = FakeSocket()
    await channel.attach(third, 1, {"type": "welcome"})
    assert [f["type"] for f in third.sent] == ["welcome"]
    assert [seq for seq, _ in await store.events_after("g", 0)] == [1]  # the turn was never stored


class StuckSocket(FakeSocket):
    """A peer that stopped reading: its sends never return."""

    async def send_text(self, data: str) -> None:
        await asyncio.Event().wait()


async def test_a_send_stuck_past_the_limit_drops_the_socket_and_the_event_stays_for_resume(
    channel: Channel, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_module, "SEND_TIMEOUT_S", 0.1)
    stuck_channel = Channel("g", store, 0)  # made after the patch: its limit is 0.1 s
    stuck = StuckSocket()
    await stuck_channel.attach(FakeSocket(), 0, {"type": "welcome"})
    stuck_channel._socket = stuck  # as if attached, then the peer stopped reading
    assert await asyncio.wait_for(stuck_channel.emit([{"type": "state"}]), 5.0) == [1]
    assert not stuck_channel.attached and stuck.closed is not None and stuck.closed[0] == 1011
    fresh = FakeSocket()
    await stuck_channel.attach(fresh, 0, {"type": "welcome"})
    assert fresh.seqs() == [1]
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0  # the stall's cancellation was taken back


class DroppedAfterWelcome(FakeSocket):
    """A page that goes away right after its welcome: the replay's first send fails."""

    async def send_text(self, data: str) -> None:
        if self.sent:
            raise Disconnected(1006)
        self.sent.append(json.loads(data))


async def test_a_send_failing_during_the_replay_leaves_no_reference_cycle(channel: Channel) -> None:
    """Reconnect storms fail sends by the thousand: each failure must be freed at once, not left in a cycle
    (task -> exception -> traceback -> task) for the collector, which a busy server runs rarely."""
    await channel.emit([{"type": "state", "n": n} for n in range(1, 4)])
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            with pytest.raises(Disconnected):
                await channel.attach(DroppedAfterWelcome(), 0, {"type": "welcome"})
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, BaseException)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []
