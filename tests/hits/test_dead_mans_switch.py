"""HITs that cannot outlive their server: short lifetimes, extended only by the run's living owner;
a stopped run lets its waiting workers go and expires its HITs at once."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from server.fence import LeaseLost
from server.hits.publisher import Publisher, epoch
from server.hits.quals import Qualifications
from server.providers.mturk import MTurk
from server.sandbox import build_sandbox
from server.states import HitStatus, RunStatus
from server.store import Store
from server.store.hits import HitStore
from tests.hits.harness import TurkWorker, eventually, mturk, open_hits, serve, settings_for
from tests.sandbox.conftest import FakeClock
from tests.support.process import ServerProcess
from tests.support.server import free_port

log = logging.getLogger(__name__)
LIFETIME_S = 60  # the shortest MTurk allows is 30 s


async def _all_open(client: Any, run_id: str, count: int) -> list[dict[str, Any]] | None:
    hits = open_hits(client, run_id)
    return hits if len(hits) >= count else None


async def test_a_killed_servers_hits_are_no_longer_acceptable_after_their_short_lifetime(
    db_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, db_url=db_url, runs={"chat": "tests.support.tasks:chat_few"},
        PARLEY_MTURK_SYNC_S="1", PARLEY_HIT_LIFETIME_S=str(LIFETIME_S),
    )
    server.start(timeout=60)
    try:
        client = mturk(f"{server.base}/sandbox/mturk")
        hits = await eventually(lambda: _all_open(client, "chat", 6), timeout=60, what="the run's six HITs")
    finally:
        server.kill()
    killed_at = time.time()
    # Published with the short lifetime, not hours: nobody is left to extend them.
    expirations = [epoch(h["Expiration"]) for h in hits]
    assert all(e - epoch(h["CreationTime"]) <= LIFETIME_S + 1 for e, h in zip(expirations, hits, strict=True))
    longest_s = max(expirations) - killed_at
    log.warning("longest a HIT stayed acceptable after its server was killed: %.1f s (lifetime %d s)",
                longest_s, LIFETIME_S)
    assert longest_s <= LIFETIME_S

    # The server never comes back. The sandbox's state, read with its clock just past the lifetime:
    later = build_sandbox(state_path=tmp_path / "sandbox.json", clock=FakeClock(killed_at + LIFETIME_S + 1))
    listed = later.call("ListHITs", {"MaxResults": 100})["HITs"]
    ours = [h for h in listed if h.get("RequesterAnnotation") == "chat"]
    assert len(ours) == len(hits)
    assert not [h for h in ours if h["HITStatus"] == "Assignable"]
    later.release()


async def test_the_owner_extends_its_open_hits_before_they_lapse_and_nobody_else_can(
    db_url: str, tmp_path: Path, store: Store
) -> None:
    lifetime = 30  # due for extension once less than half is left: after about 15 s
    settings = settings_for(tmp_path, db_url, {"chat": "tests.support.tasks:chat_few"}, hit_lifetime_s=lifetime)
    with serve(settings) as server:
        client = mturk(server.endpoint)
        hits = await eventually(lambda: _all_open(client, "chat", 6), timeout=60, what="the run's six HITs")
        first_expiry = {h["HITId"]: epoch(h["Expiration"]) for h in hits}
        hit_store = HitStore(store)
        plan = await hit_store.plan("chat")
        assert plan is not None and plan.lifetime_s == lifetime

        # A process that does not own the run extends nothing.
        mine = MTurk.connect(server.endpoint, builtin=True)
        stranger = Publisher(mine, hit_store, Qualifications(mine, hit_store), server.base, fence=lambda _run_id: False)
        with pytest.raises(LeaseLost):
            await stranger.keep_alive(plan, await hit_store.hits("chat", statuses=(HitStatus.OPEN,)), time.time() + 20)

        # The owner pushes every open HIT out before it lapses, while the run lives and publishes.
        async def extended() -> bool:
            now = {h["HITId"]: epoch(h["Expiration"]) for h in open_hits(client, "chat")}
            return set(now) == set(first_expiry) and all(now[i] > first_expiry[i] + 5 for i in now)

        await eventually(extended, timeout=60, what="the owner to extend its six HITs")
        assert len(open_hits(client, "chat")) == 6


async def test_stopping_a_run_lets_its_waiting_worker_go_and_expires_its_hits(
    db_url: str, tmp_path: Path, store: Store
) -> None:
    settings = settings_for(
        tmp_path, db_url, {"chat": "tests.support.tasks:chat_few"}, lease_s=1.5, hit_lifetime_s=LIFETIME_S
    )
    with serve(settings) as server:
        client = mturk(server.endpoint)
        hits = await eventually(lambda: _all_open(client, "chat", 6), timeout=60, what="the run's six HITs")
        worker = TurkWorker(server.base, "chat", "AWAITING1")
        try:
            await worker.accept(hits[0]["HITId"])
            await worker.start()
            await worker.wait_state("waiting", timeout=30)
            # What `parley stop` does from any terminal: the database says so, the owner acts on it.
            await store.set_run_status("chat", status=RunStatus.STOPPED)
            await HitStore(store).update_plan("chat", publishing=False)
            closed = await worker.wait_state("closed", timeout=30)
            assert closed["can_submit"] is True and "stopped" in closed["text"]
        finally:
            await worker.drop()
        await eventually(
            lambda: _none_open(client, "chat"), timeout=60, what="the stopped run's HITs to be expired"
        )


async def _none_open(client: Any, run_id: str) -> bool:
    return not open_hits(client, run_id)
