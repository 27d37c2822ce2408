"""One owner per run: two real server processes on one database and one data directory.

Exactly one process tends each run (its HITs are made once and never expired by the other); SIGKILL the
owner and the other takes the run over within the lease time plus one pass, recovering it as a restart
does; a server on a non-default port publishes HITs that name that port.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.hits import plan as rules
from server.store import Store
from server.store.hits import HitStore
from server.store.leases import LeaseStore
from server.tasks import load_task
from tests.hits.harness import TurkWorker, eventually, mturk, open_hits
from tests.support.process import ServerProcess
from tests.support.server import free_port

log = logging.getLogger(__name__)
LEASE_S = 3.0
PASS_S = LEASE_S / 3
RUNS = {"chat": "tests.support.tasks:chat_few"}
ENV = {"PARLEY_LEASE_S": str(LEASE_S), "PARLEY_MTURK_SYNC_S": "1", "PARLEY_HIT_LIFETIME_S": "1200"}


@pytest.fixture
def pair(db_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(port=free_port(), data_dir=tmp_path, db_url=db_url, runs=RUNS, **ENV)
    second = ServerProcess(port=free_port(), data_dir=tmp_path, db_url=db_url, runs=RUNS, **ENV)
    try:
        first.start(timeout=60)
        second.start(timeout=60)
        yield first, second
    finally:
        second.stop()
        first.stop()


def _instance(server: ServerProcess) -> str:
    return str(httpx.get(f"{server.base}/healthz", timeout=10).json()["instance"])


async def _owner(store: Store, run_id: str) -> tuple[str, float]:
    return (await LeaseStore(store).leases())[run_id]


def _run_hits(server: ServerProcess, run_id: str) -> list[dict[str, Any]]:
    """Every HIT of the run on the built-in sandbox, whatever its status."""
    client = mturk(f"{server.base}/sandbox/mturk")
    found, token = [], None
    while True:
        page = client.list_hits(MaxResults=100, **({"NextToken": token} if token else {}))
        found += [h for h in page["HITs"] if h.get("RequesterAnnotation") == run_id]
        token = page.get("NextToken")
        if not token or not page["HITs"]:
            return found


def _planned(task_module: str) -> int:
    """How many HITs the run's plan keeps open before anyone has joined."""
    task = load_task(task_module)
    caps = task.caps
    need = rules.Need(
        target=caps.target_conversations, completed=0, live_conversations=0, humans_waiting=0,
        roles=len(task.roles), max_conversations=caps.max_conversations,
    )
    return rules.open_target(need, overbook=1.25)


async def _published(server: ServerProcess, store: Store, run_id: str) -> list[dict[str, Any]] | None:
    """The run's HITs once the owner has published its whole plan: every record open and on the sandbox."""
    records = await HitStore(store).hits(run_id)
    hits = _run_hits(server, run_id)
    settled = len(records) == len(hits) == _planned(RUNS[run_id]) and all(r.status == "open" for r in records)
    return hits if settled else None


async def test_one_process_tends_each_run_and_the_other_takes_over_after_a_sigkill(
    pair: tuple[ServerProcess, ServerProcess], store: Store
) -> None:
    first, second = pair
    first_id, second_id = _instance(first), _instance(second)
    assert first_id != second_id
    # The first process took the run at start-up; the second serves nothing of it.
    assert (await _owner(store, "chat"))[0] == first_id
    hits = await eventually(
        lambda: _published(first, store, "chat"), timeout=60, what="the owner's HITs, all open, on the sandbox"
    )
    planned = {h["HITId"] for h in hits}
    info = await _get(f"{second.base}/task/chat/info")
    assert info.status_code == 404 and info.json()["error"]["code"] == "unknown_run"
    # The sandbox has one writer: the second process forwards sandbox requests to the first, whose answer
    # (here MTurk's refusal of a call that names no operation) comes back as given.
    async with httpx.AsyncClient(timeout=10) as http:
        forwarded = await http.post(f"{second.base}/sandbox/mturk")
        direct = await http.post(f"{first.base}/sandbox/mturk")
    assert forwarded.status_code == direct.status_code == 400
    assert forwarded.json() == direct.json() and forwarded.json()["__type"] == "UnknownOperationException"

    # Over several lease periods and HIT-manager passes nothing changes hands and no HIT is made or expired
    # by anyone: the number of HITs stays the plan, all of them still open.
    deadline = time.monotonic() + 4 * LEASE_S
    while time.monotonic() < deadline:
        assert (await _owner(store, "chat"))[0] == first_id
        await asyncio.sleep(PASS_S)  # sampling the lease across the window is the point of this loop
    hits = _run_hits(first, "chat")
    assert {h["HITId"] for h in hits} == planned
    assert len(await HitStore(store).hits("chat")) == len(planned)
    assert all(h["HITStatus"] == "Assignable" for h in hits)

    # A conversation under way on the owner when it is killed.
    a, b = TurkWorker(first.base, "chat", "AWORKERA"), TurkWorker(first.base, "chat", "AWORKERB")
    try:
        open_now = open_hits(mturk(f"{first.base}/sandbox/mturk"), "chat")
        for worker, hit in zip((a, b), open_now, strict=False):
            await worker.accept(hit["HITId"])
            await worker.start()
        await a.wait_state("in_task", timeout=30)
        await a.wait_turn(1, timeout=30)
        said = await a.wait_stored(await a.say("before the owner died"))

        killed_at = time.monotonic()
        first.kill()
        owner = await eventually(
            lambda: _owned_by(store, "chat", second_id), timeout=60, what="the second process to take the lease"
        )
        takeover_s = time.monotonic() - killed_at
        log.warning("takeover after SIGKILL: %.2f s (lease %.1f s, pass %.2f s)", takeover_s, LEASE_S, PASS_S)
        assert owner == second_id
        # Within the lease time plus one pass, with room for a busy machine to be late by a few seconds.
        assert takeover_s < LEASE_S + PASS_S + 5.0

        # Recovery is a restart's: the conversation continues on the new owner, its world replayed from the
        # record (once it serves the run: taking the lease comes first, then the run's recovery). B has A's
        # line once and a new turn; what B says reaches A.
        async def served() -> bool:
            return (await _get(f"{second.base}/task/chat/info")).status_code == 200

        await eventually(served, timeout=60, what="the second process to serve the run it took")
        turns_before = set(b.turns)
        for worker in (a, b):
            worker.base = second.base
            await worker.connect()
        await b.wait_frame(lambda f: f["type"] == "turn" and f["turn_id"] not in turns_before, timeout=30)
        assert [m["message_id"] for m in b.chat()].count(said["message_id"]) == 1
        answer = await b.wait_stored(await b.say("after the takeover"), timeout=30)
        await a.wait_frame(lambda f: f.get("message_id") == answer["message_id"], timeout=30)
        assert a.duplicates == b.duplicates == 0 and not a.gaps and not b.gaps
        assert await store.message_exists(said["message_id"])
        # The second process now serves the sandbox (the first's lock died with it) and keeps the HITs: every
        # HIT on the sandbox has exactly one record, and no record's token was used twice.
        async def reconciled() -> bool:
            records = await HitStore(store).hits("chat")
            made = {r.hit_id for r in records if r.hit_id}
            return made == {h["HITId"] for h in _run_hits(second, "chat")} and len(made) == len(
                [r for r in records if r.hit_id]
            )

        await eventually(reconciled, timeout=60, what="the new owner's records to match the sandbox's HITs")
        tokens = [r.token for r in await HitStore(store).hits("chat")]
        assert len(tokens) == len(set(tokens))
    finally:
        for worker in (a, b):
            await worker.drop()
    assert "Traceback" not in second.log.read_text()


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(url)


async def _owned_by(store: Store, run_id: str, instance: str) -> str | None:
    owner, _ = await _owner(store, run_id)
    return owner if owner == instance else None


async def _some(items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return items or None


async def test_a_server_on_a_non_default_port_publishes_hits_naming_that_port(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(
        port=port, data_dir=tmp_path, db_url=db_url, runs={"qa": "tests.support.tasks:qa"},
        command=[sys.executable, "-m", "uvicorn", "server.main:app", "--port", str(port), "--ws", "websockets-sansio"],
        PARLEY_PORT=str(port), PARLEY_MTURK_SYNC_S="1",
    )
    del server.env["PARLEY_PUBLIC_URL"]  # what `PARLEY_PORT=8125 make run` sets: the port alone
    server.start(timeout=60)
    try:
        client = mturk(f"{server.base}/sandbox/mturk")
        hits = await eventually(lambda: _some(open_hits(client, "qa")), timeout=60, what="the qa run's HITs")
        question = client.get_hit(HITId=hits[0]["HITId"])["HIT"]["Question"]
        assert f"http://127.0.0.1:{port}/task/qa" in question
        worker = TurkWorker(server.base, "qa", "AWORKERPORT")
        try:
            await worker.accept(hits[0]["HITId"])
            await worker.start()
            await worker.wait_turn(1, timeout=30)
            await worker.say("a question asked on a server at its own port")
            await worker.wait_turn(2, timeout=30)
            await worker.say("the answer, from the same server")
            await worker.wait_state("done", timeout=30)
            await worker.submit()
        finally:
            await worker.drop()
        assignment = client.get_assignment(AssignmentId=worker.assignment_id)["Assignment"]
        assert assignment["AssignmentStatus"] == "Submitted"
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()


async def test_a_paused_owner_stops_acting_once_another_has_taken_its_run(
    pair: tuple[ServerProcess, ServerProcess], store: Store
) -> None:
    first, second = pair
    second_id = _instance(second)
    hits = await eventually(
        lambda: _published(first, store, "chat"), timeout=60, what="the owner's HITs, all open, on the sandbox"
    )
    assert first.proc is not None
    first.proc.send_signal(signal.SIGSTOP)  # paused: no renewal, no pass, nothing
    try:
        await eventually(
            lambda: _owned_by(store, "chat", second_id), timeout=60, what="the second process to take the lease"
        )
    finally:
        first.proc.send_signal(signal.SIGCONT)
    # Woken up, the first process must not act on the run: it notices on its next pass and stops serving it.
    async def dropped() -> bool:
        return (await _get(f"{first.base}/task/chat/info")).status_code == 404

    await eventually(dropped, timeout=60, what="the woken process to stop serving the run")
    # Its HITs were neither expired nor duplicated by either process meanwhile.
    records = await HitStore(store).hits("chat")
    assert len(records) == len(hits) and all(r.status == "open" for r in records)
    assert (await _owner(store, "chat"))[0] == second_id
    assert "lost the lease of run chat" in first.log.read_text()
