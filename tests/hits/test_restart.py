"""A SIGKILL mid-run, then a restart on the same data: reconciliation leaves exactly the HITs that should be open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.hits import plan as rules
from server.states import HitStatus, RunStatus
from server.store import Store
from server.store.hits import HitStore
from tests.hits.harness import TurkWorker, eventually, mturk, open_hits
from tests.support.process import ServerProcess
from tests.support.server import free_port

RUNS = {"r1": "tests.hits.tasks:chat2", "r2": "tests.hits.tasks:chat2"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        port=free_port(), data_dir=tmp_path, db_url=f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}", runs=RUNS,
        PARLEY_MTURK_PUBLISH=json.dumps(list(RUNS)), PARLEY_MTURK_SYNC_S="0.3",
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_restart_after_sigkill_recovers_records_and_leaves_exactly_the_wanted_hits_open(
    tmp_path: Path, server: ServerProcess
) -> None:
    base = server.base
    client = mturk(f"{base}/sandbox/mturk")
    first = await eventually(lambda: _open(client, "r1", 2), what="r1's two HITs")
    await eventually(lambda: _open(client, "r2", 2), what="r2's two HITs")
    worker = TurkWorker(base, "r1", "AKEEPS")
    await worker.accept(first[0]["HITId"])  # taken, never joined: it stays the worker's across the crash
    await eventually(lambda: _open(client, "r1", 2), what="r1 topped up to two open HITs")

    server.kill()  # SIGKILL: no shutdown code runs
    lost, never_made = await _crash_damage(tmp_path)

    server.start()
    await eventually(lambda: _none_open(client, "r2"), what="the stopped run's HITs expired")
    r1 = await eventually(lambda: _open(client, "r1", 2), what="r1 still at two open HITs")
    records = await _records(tmp_path, "r1")
    recorded = {r.hit_id for r in records}
    assert {h["HITId"] for h in r1} <= recorded  # every open HIT has its record
    assert first[0]["HITId"] in recorded  # the taken one too
    by_token = {r.token: r for r in records}
    assert by_token[lost].hit_id is not None  # recovered from MTurk by its annotation
    assert by_token[never_made].status == "failed"  # MTurk never made it: nothing to recover, nothing charged
    listed = [h for h in _all(client) if h.get("RequesterAnnotation") == "r1"]
    assert len(listed) == len(recorded - {None})  # no HIT of r1 that no record names


async def _crash_damage(data_dir: Path) -> tuple[str, str]:
    """What a crash at the worst moments leaves: a HIT made but not noted, a slot noted but not made.

    And the requester stopped r2 while the server was down.
    """
    store = Store(f"sqlite+aiosqlite:///{data_dir / 'parley.db'}")
    try:
        hit_store = HitStore(store)
        lost = next(r for r in await hit_store.hits("r1") if r.status == "open")
        await hit_store.set_hit(lost.token, hit_id=None, status=HitStatus.CREATING)
        never_made = await hit_store.reserve_hit("r1", 60, lambda slot: rules.hit_token("r1", slot))
        await store.set_run_status("r2", status=RunStatus.STOPPED)
        return lost.token, never_made.token
    finally:
        await store.close()


async def _records(data_dir: Path, run_id: str) -> list[Any]:
    store = Store(f"sqlite+aiosqlite:///{data_dir / 'parley.db'}")
    try:
        return await HitStore(store).hits(run_id)
    finally:
        await store.close()


def _all(client: Any) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = client.list_hits(MaxResults=100)["HITs"]
    return hits


async def _open(client: Any, run_id: str, count: int) -> list[dict[str, Any]] | None:
    hits = open_hits(client, run_id)
    return hits if len(hits) == count else None


async def _none_open(client: Any, run_id: str) -> bool:
    return not open_hits(client, run_id)
