"""Disconnect storm: every worker's socket is dropped at random moments (clean closes, TCP resets,
half-open sockets that stop answering heartbeats), sometimes right after sending. Afterwards every acked
message is stored exactly once, every stream is gap-free with no duplicate, every conversation completed.

CI size: 60 conversations. Full size: `PARLEY_STORM_CONVERSATIONS=200 make test-heavy` (or -m heavy).
"""

import asyncio
import json
import os
import random
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy import select

from server.store import MessageRow, Store
from tests.conftest import make_settings
from tests.support.client import Crowd, Frame, Worker
from tests.support.server import LiveServer, serve

HEARTBEAT_S = 0.4  # the server closes a socket silent for 3 heartbeats


@dataclass
class Chaos:
    rng: random.Random
    drops: Counter[str] = field(default_factory=Counter)


async def _ensure(w: Worker, deadline: float) -> None:
    while w.closed_code is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"still reconnecting; the last socket closed with {w.closed_code}")
        try:
            await w.connect()
        except OSError:
            await asyncio.sleep(0.05)  # back off like the page does


async def _wait(w: Worker, match: Callable[[Frame], bool], deadline: float) -> Frame:
    while True:
        await _ensure(w, deadline)
        try:
            return await w.wait_frame(match, timeout=0.5)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


async def _disturb(w: Worker, chaos: Chaos) -> None:
    roll = chaos.rng.random()
    if roll < 0.25:
        await w.drop()
        chaos.drops["clean_close"] += 1
    elif roll < 0.5:
        await w.abort()
        chaos.drops["tcp_reset"] += 1
    elif roll < 0.6:
        w.stop_heartbeat()  # half-open: silent and not reading until the server gives up on it
        assert w.ws is not None
        w.ws.transport.pause_reading()
        await asyncio.sleep(HEARTBEAT_S * 3.5)  # outlast the server's heartbeat bound
        await w.abort()
        chaos.drops["half_open"] += 1


async def _say_until_acked(w: Worker, text: str, data: Frame, chaos: Chaos, deadline: float) -> str:
    client_id = uuid.uuid4().hex
    while True:
        await _ensure(w, deadline)
        before = len(w.frames)
        try:
            await w.say(text, data, client_id=client_id)
        except websockets.ConnectionClosed:  # the socket died under the send: resend the same client id
            # A send on a dead socket fails without yielding; wait for the reader to record the close, or this
            # loop would spin without ever letting it run.
            await w.wait_closed()
            continue
        if chaos.rng.random() < 0.15:
            await w.abort()  # cut right after sending: stored or not, the resend must not duplicate
            chaos.drops["after_send"] += 1
            continue
        try:
            await w.wait_stored(client_id, after=before, timeout=1)
            return client_id
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


async def _work(
    live: LiveServer, w: Worker, turns: int, chaos: Chaos, acked: list[tuple[str, str]]
) -> None:
    try:
        await _converse(w, turns, chaos, acked)
    except TimeoutError as exc:
        tail = json.dumps([f for f in w.frames if f["type"] != "pong"][-12:])
        raise AssertionError(
            f"{w.worker_id} (agent {w.agent_id}) stuck ({exc or 'a wait ran out'}); socket closed with "
            f"{w.closed_code}; {len(w.turns)} turns, "
            f"{len(w.frames)} frames; the server's view: {_server_view(live, w.agent_id)}; "
            f"the last frames but pongs:\n{tail}"
        ) from None


def _failure(exc: BaseException) -> str:
    if isinstance(exc, AssertionError):
        return str(exc)
    return "".join(traceback.format_exception(exc)[-6:])


def _server_view(live: LiveServer, agent_id: str) -> dict[str, object]:
    """What the run holds for an agent, read across threads for a failure message only."""
    run = live.app.state.runs.get("storm")
    human = run.humans.get(agent_id)
    if human is None:
        return {"released": "the run no longer holds this agent: it left (its state is in the store)"}
    conv = run.host.live.get(human.conversation_id)
    others = [h.agent_id for h in conv.humans if h.agent_id != agent_id] if conv else []
    return {
        "state": run.states.get(agent_id), "waiting": agent_id in run.waiting, "attached": human.channel.attached,
        "role": human.role, "conversation": human.conversation_id, "live": conv is not None,
        "forming": run.host.forming, "in_waiting_room": len(run.waiting),
        "partners": {a: (run.states.get(a), run.humans[a].channel.attached) for a in others},
        "open_turn": human._turn is not None and not human._turn.done(),
        "tasks": {t.get_name(): _awaiting(t.get_coro()) for t in list(run.supervisor._tasks)
                  if human.conversation_id in t.get_name() or agent_id in t.get_name()},
    }


def _awaiting(coro: Any) -> list[str]:
    """Where a suspended coroutine waits: its await chain, outermost first."""
    chain = []
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        chain.append(f"{coro.cr_code.co_name}:{coro.cr_frame.f_lineno}")
        coro = coro.cr_await
    if coro is not None:
        chain.append(repr(coro)[:200])
    return chain


async def _converse(w: Worker, turns: int, chaos: Chaos, acked: list[tuple[str, str]]) -> None:
    deadline = time.monotonic() + 120
    await w.start()
    for n in range(1, turns + 1):
        await _wait(w, lambda f, n=n: f["type"] == "turn" and _turns(w) >= n, deadline)
        await _disturb(w, chaos)
        await _ensure(w, deadline)
        if n <= turns - 1:
            text = f"{w.worker_id} says {n}"
            acked.append((w.agent_id, await _say_until_acked(w, text, {}, chaos, deadline)))
        else:
            survey = {"form": {"enjoyed": 3, "partner_engaged": "Yes", "comment": ""}}
            acked.append((w.agent_id, await _say_until_acked(w, "survey", survey, chaos, deadline)))
    await _wait(w, lambda f: f["type"] == "state" and f["state"] == "done", deadline)


def _turns(w: Worker) -> int:
    return len(w.turns)


@pytest.fixture
async def storm_server(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    settings = make_settings(db_url, tmp_path, {"storm": "tests.support.tasks:storm_chat"})
    settings = settings.model_copy(update={"heartbeat_s": HEARTBEAT_S, "rate_burst": 100, "rate_per_s": 50.0})
    with serve(settings) as live:
        yield live


async def _storm(live: LiveServer, store: Store, conversations: int, seed: int) -> dict[str, object]:
    chaos = Chaos(random.Random(seed))
    crowd = Crowd(live.base)
    acked: list[tuple[str, str]] = []
    workers = [crowd.worker("storm", f"W{i:04d}") for i in range(conversations * 2)]
    for w in workers:
        w.heartbeat_s = HEARTBEAT_S
    try:
        outcomes = await asyncio.gather(*(_work(live, w, 5, chaos, acked) for w in workers), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:  # every stuck worker, so both sides of a stuck conversation show
            raise AssertionError(f"{len(failures)} workers failed:\n" + "\n".join(map(_failure, failures[:6])))
    finally:
        await crowd.close()

    table = MessageRow.__table__  # type: ignore[attr-defined]
    rows = await store.fetch_all(select(table.c.agent_id, table.c.client_id))
    stored = Counter((r[0], r[1]) for r in rows if r[1] is not None)
    lost = [key for key in acked if stored[key] == 0]
    duplicated = [key for key, count in stored.items() if count > 1]
    by_agent = {w.agent_id: w for w in workers}
    for w in workers:
        assert w.duplicates == 0 and not w.gaps, (w.worker_id, w.duplicates, w.gaps)
        assert sorted(w.events) == list(range(1, w.last_seq + 1))
    for conv in await store.conversations("storm"):
        assert conv.state == "completed", conv
        a, b = (by_agent[conv.participants[r]] for r in ("Speaker 1", "Speaker 2"))
        texts_a = [m["text"] for m in a.chat() if m["kind"] == "chat" and m["text"] != "survey"]
        texts_b = [m["text"] for m in b.chat() if m["kind"] == "chat" and m["text"] != "survey"]
        assert texts_a == texts_b, (texts_a, texts_b)  # both saw the whole dialogue once, in order
        assert len(texts_a) == 8
    summary = {
        "conversations": conversations, "workers": len(workers), "acked": len(acked),
        "dropped_sockets": dict(chaos.drops), "lost": len(lost), "duplicated": len(duplicated),
    }
    assert not lost and not duplicated, summary
    assert len(acked) == len(workers) * 5
    report = os.environ.get("PARLEY_STORM_REPORT")
    if report:
        await asyncio.to_thread(Path(report).write_text, json.dumps(summary, indent=2))
    return summary


async def test_a_disconnect_storm_loses_and_duplicates_nothing(storm_server: LiveServer, store: Store) -> None:
    summary = await _storm(storm_server, store, conversations=60, seed=7)
    assert sum(summary["dropped_sockets"].values()) > 100  # type: ignore[union-attr]


@pytest.mark.heavy
async def test_a_full_size_disconnect_storm_loses_and_duplicates_nothing(
    storm_server: LiveServer, store: Store
) -> None:
    size = int(os.environ.get("PARLEY_STORM_CONVERSATIONS", "200"))
    await _storm(storm_server, store, conversations=size, seed=11)
