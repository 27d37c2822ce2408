"""What a run keeps in memory: its live agents only. Agents that left are released (and reloaded from the
store if they come back); reconnecting retains nothing; the flood limit is per agent, not per socket."""

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.runner import Run
from tests.conftest import TEST_RUNS, make_settings
from tests.support.client import Crowd, Worker
from tests.support.server import LiveServer, serve


def _run(live: LiveServer, run_id: str) -> Run:
    run = live.app.state.runs.get(run_id)
    assert run is not None
    return run


def _held(run: Run) -> dict[str, int]:
    """The run's per-agent and per-worker state."""
    return {"humans": len(run.humans), "states": len(run.states), "workers": len(run.workers),
            "join_locks": len(run._join_locks), "rate_limits": len(run.rate_limits)}


def _objects() -> Counter[str]:
    """Live objects of Parley's own classes (agents, channels, sockets, guards, buckets, ...), by class."""
    gc.collect()
    return Counter(type(o).__qualname__ for o in gc.get_objects() if str(type(o).__module__).startswith("server."))


async def _eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for a condition of the server's memory, which announces nothing: checked every 50 ms, bounded."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def _finish_qa(crowd: Crowd, worker_id: str) -> Worker:
    worker = await crowd.start("qa", worker_id)
    await worker.wait_turn(1)
    await worker.say("A question?")
    await worker.wait_turn(2)
    await worker.say("An answer.")
    await worker.wait_state("done")
    await worker.send({"type": "submit"})
    await worker.wait_state("submitted")
    return worker


async def test_agents_that_left_are_released_from_the_runs_memory(live: LiveServer, crowd: Crowd) -> None:
    run = _run(live, "qa")
    before, objects_before = _held(run), _objects()
    # 40 who join and never open the page (their grace runs out), 5 who finish, submit and close the page
    for i in range(40):
        await crowd.worker("qa", f"W-gone-{i}").join()
    finished = [await _finish_qa(crowd, f"W-done-{i}") for i in range(5)]
    for worker in finished:
        await worker.drop()
    await _eventually(lambda: _held(run) == before, "the run to release the 45 agents that left")
    grown = {k: n - objects_before[k] for k, n in _objects().items() if n - objects_before[k] >= 10}
    assert grown == {}, grown
    # One comes back: it is loaded again from the store, with its whole stream.
    back = finished[0]
    back.frames.clear()
    assert (await back.connect(last_seq=0))["state"] == "submitted"
    await back.wait_frame(lambda f: f.get("seq") == back.last_seq and f["type"] == "state")
    assert run.states[back.agent_id] == "submitted"
    await back.drop()
    await _eventually(lambda: _held(run) == before, "the run to release the agent that came back")


async def test_reconnecting_retains_nothing(live: LiveServer, crowd: Crowd) -> None:
    run = _run(live, "qa")
    worker = await crowd.start("qa", "W-reconnect")
    await worker.wait_turn(1)
    for _ in range(10):  # warm up whatever is made once
        await worker.drop()
        await worker.connect()
    held, objects = _held(run), _objects()
    for _ in range(300):
        await worker.drop()
        await worker.connect()
    assert _held(run) == held
    grown = {k: n - objects[k] for k, n in _objects().items() if n - objects[k] >= 10}
    assert grown == {}, grown


def _answers(worker: Worker, after: int) -> int:
    return sum(1 for f in worker.frames[after:] if f["type"] in ("pong", "error"))


@pytest.fixture
def slow_limit(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(db_url, tmp_path, TEST_RUNS).model_copy(update={"rate_per_s": 1.0, "rate_burst": 5})
    with serve(settings) as server:
        yield server


async def test_reconnecting_does_not_refill_the_flood_limit(slow_limit: LiveServer) -> None:
    crowd = Crowd(slow_limit.base)
    try:
        worker = await crowd.start("qa", "W-flood")
        started = time.monotonic()
        for _ in range(20):
            seen = len(worker.frames)
            for _ in range(5):
                await worker.send({"type": "ping"})
            await worker.wait_frame(lambda _f, seen=seen: _answers(worker, seen) == 5, after=seen)
            await worker.drop()
            await worker.connect()
        elapsed = time.monotonic() - started
        pongs = sum(1 for f in worker.frames if f["type"] == "pong")
        limited = sum(1 for f in worker.frames if f.get("code") == "rate_limited")
        assert pongs + limited == 100
        assert pongs <= 5 + elapsed * 1.0 + 1, (pongs, elapsed)  # the burst, then the refill rate
    finally:
        await crowd.close()
