"""The relay's parts in one process: the in-memory delivery layer, the socket instance's seq bookkeeping (a
frame lost in transit is filled from the stored stream; a duplicate is dropped), and the owner's end of a
relayed socket (what it sends goes to the socket instance; silence closes it with 4408)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from server.channel import Channel, Disconnected
from server.delivery import LocalDelivery
from server.registry import Runs
from server.relay import Relay, Relayed, RemoteSocket
from server.settings import Settings
from server.states import AgentState
from server.store import AgentRow, Store
from server.tokens import TokenSigner


class PageSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def _relay(store: Store, delivery: LocalDelivery) -> Relay:
    runs = Runs(store=store, settings=Settings(), signer=TokenSigner("k" * 32, 60))

    async def never(_remote: RemoteSocket) -> None:
        raise AssertionError("no relayed socket is served in this test")

    return Relay(delivery, runs=runs, store=store, heartbeat_s=1, check_every_s=1, serve_remote=never)


async def test_local_delivery_keeps_order_and_reports_an_inbox_that_is_gone() -> None:
    got: list[dict[str, Any]] = []
    gone: list[str] = []
    first, second = LocalDelivery("one", hub="order"), LocalDelivery("two", hub="order")
    await first.start(lambda _m: None, on_reset=lambda: None, on_unreachable=gone.append)
    await second.start(got.append, on_reset=lambda: None, on_unreachable=gone.append)
    for n in range(5):
        first.send("two", {"n": n})
    first.send("three", {"n": 99})
    await asyncio.sleep(0)  # deliveries are scheduled, not run inline
    assert [m["n"] for m in got] == [0, 1, 2, 3, 4]
    assert gone == ["three"]
    await second.aclose()
    first.send("two", {"n": 5})
    await asyncio.sleep(0)
    assert gone == ["three", "two"] and len(got) == 5
    await first.aclose()


async def test_a_frame_lost_in_transit_is_filled_from_the_stored_stream_and_a_duplicate_dropped(
    store: Store,
) -> None:
    await store.ensure_run("r", task_module="m", options={})
    await store.create_agent(AgentRow(id="g", run_id="r", worker_id="w", assignment_id="a", state=AgentState.JOINED))
    channel = await Channel.load("g", store)
    await channel.emit([{"type": "state", "state": "joined"}, {"type": "state", "state": "waiting"},
                        {"type": "state", "state": "in_task"}])
    relay = await _relay(store, LocalDelivery("socket-side", hub="fill"))
    page = PageSocket()
    relayed = Relayed("c1", page, "owner", "g", last_seq=1)  # the page has seq 1
    writer = asyncio.create_task(relay._write(relayed))
    relayed.outbox.put_nowait(("text", '{"type":"state","state":"in_task","seq":3}', None))  # seq 2 was lost
    relayed.outbox.put_nowait(("text", '{"type":"state","state":"in_task","seq":3}', None))  # and a duplicate
    relayed.outbox.put_nowait(("text", '{"type":"pong"}', None))
    relayed.close(4409, "replaced")
    await asyncio.wait_for(writer, 10)
    assert [f.get("seq") for f in page.sent] == [2, 3, None]
    assert page.sent[0]["state"] == "waiting"
    assert page.closed == (4409, "replaced")


async def test_the_owners_end_sends_to_the_socket_instance_and_closes_a_silent_socket_with_4408() -> None:
    heard: list[dict[str, Any]] = []
    owner, holder = LocalDelivery("owner", hub="remote"), LocalDelivery("holder", hub="remote")
    await owner.start(lambda _m: None, on_reset=lambda: None, on_unreachable=lambda _i: None)
    await holder.start(heard.append, on_reset=lambda: None, on_unreachable=lambda _i: None)
    remote = RemoteSocket("holder/1", "holder", owner)
    remote.feed('{"type":"ping"}')
    assert await remote.receive(1) == '{"type":"ping"}'
    await remote.send_text('{"type":"pong"}')
    try:
        await remote.receive(0.05)
        raise AssertionError("a silent relayed socket must close")
    except Disconnected as exc:
        assert exc.code == 4408
    await asyncio.sleep(0)
    assert heard == [
        {"op": "send", "conn": "holder/1", "text": '{"type":"pong"}'},
        {"op": "close", "conn": "holder/1", "code": 4408, "reason": "no heartbeat"},
    ]
    try:
        await remote.send_text("late")
        raise AssertionError("a closed relayed socket must refuse sends")
    except Disconnected:
        pass
    await owner.aclose()
    await holder.aclose()
