"""Several instances on one PostgreSQL database and one Redis: each cross-instance rule, with real server
processes and real websocket clients that pick the instance they talk to (no load balancer here; the
load-balanced path with Chromium is in tests/multi/test_cluster_chromium.py).

The run has one owner; partners whose sockets and joins land on the other instances chat with every
guarantee of docs/protocol.md. A newer socket on another instance replaces the older one (4409), resends are
deduplicated and resumes are gap-free; Redis restarted mid-run costs nothing acked; a SIGKILLed owner's
run is taken over, the pages resume on the instances left and the conversation continues to its end (its
world replayed on the new owner).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from server.store import Store
from server.store.leases import LeaseStore
from tests.conftest import PG_URL
from tests.support.client import Crowd, Worker
from tests.support.process import ServerProcess
from tests.support.server import free_port

pytestmark = pytest.mark.skipif(not PG_URL, reason="several instances share PostgreSQL: set PARLEY_TEST_DATABASE_URL")

LEASE_S = 3.0
RUNS = {"chat": "tests.support.tasks:chat_across_instances"}
WAIT_S = 60.0  # generous: three servers and the test share two cores


class RedisServer:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server; .ci/run installs it)"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                import redis

                if redis.Redis(port=self.port, socket_connect_timeout=1).ping():
                    return
            except Exception:
                time.sleep(0.1)  # waiting for redis-server to listen
        raise AssertionError(f"redis-server did not answer on port {self.port} within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.conftest import _reset_pg

    asyncio.run(_reset_pg(PG_URL))
    yield PG_URL


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:
    s = Store(pg_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def start_instances(n: int, *, db_url: str, data_dir: Path, redis_url: str) -> list[ServerProcess]:
    prefix = f"parley-test-{secrets.token_hex(4)}"
    env = {
        "PARLEY_REDIS_URL": redis_url, "PARLEY_REDIS_PREFIX": prefix, "PARLEY_LEASE_S": str(LEASE_S),
        "PARLEY_MTURK_PUBLISH": "[]", "PARLEY_HEARTBEAT_S": "2",
    }
    servers = [ServerProcess(port=free_port(), data_dir=data_dir, db_url=db_url, runs=RUNS, **env) for _ in range(n)]
    for server in servers:
        server.start(timeout=WAIT_S)
    return servers


@pytest.fixture
def trio(pg_url: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers = start_instances(3, db_url=pg_url, data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0")
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def instance_id(server: ServerProcess) -> str:
    return str(httpx.get(f"{server.base}/healthz", timeout=10).json()["instance"])


async def owner_and_others(store: Store, servers: list[ServerProcess], run_id: str = "chat") -> tuple[
    ServerProcess, list[ServerProcess]
]:
    """The instance serving the run (once one does) and the others."""
    ids = {instance_id(s): s for s in servers if s.proc is not None and s.proc.poll() is None}
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        owner = await LeaseStore(store).live_owner(run_id, time.time())
        if owner in ids:
            return ids[owner], [s for i, s in ids.items() if i != owner]
        await asyncio.sleep(0.2)  # waiting for an ownership pass to take the run
    raise AssertionError(f"no live instance took run {run_id!r} within {WAIT_S:.0f} s")


def worker(crowd: Crowd, server: ServerProcess, worker_id: str) -> Worker:
    """A worker whose page talks to `server` and pings as the page does (every second)."""
    made = crowd.worker("chat", worker_id)
    made.base = server.base
    made.heartbeat_s = 1.0
    return made


async def chat(a: Worker, b: Worker, rounds: int, *, first: int = 0) -> list[str]:
    """a and b take turns (rounds `first` .. `first + rounds - 1` of the conversation); each line is seen
    by the partner before the next turn. The texts, in order."""
    said: list[str] = []
    for i in range(first, first + rounds):
        for speaker, partner in ((a, b), (b, a)):
            await speaker.wait_turn(i + 1, timeout=WAIT_S)
            text = f"{speaker.worker_id} line {i}"
            await speaker.wait_stored(await speaker.say(text), timeout=WAIT_S)
            await partner.wait_frame(lambda f, t=text: f.get("text") == t, timeout=WAIT_S)
            said.append(text)
    return said


async def each_saw_and_the_store_holds(store: Store, a: Worker, b: Worker, said: list[str]) -> None:
    """Both pages saw the six lines in order, once each, with no gap; the store holds them in that order."""
    for w in (a, b):
        seen = [m["text"] for m in w.chat() if m["kind"] == "chat"]
        assert seen[:6] == said
        assert w.duplicates == 0 and w.gaps == []
    agent = await store.get_agent(a.agent_id)
    assert agent is not None
    assert [m.text for m in await store.messages(agent.conversation_id)][:6] == said


async def reconnect(worker: Worker, servers: list[ServerProcess]) -> None:
    """What the page does after a 1012 or 1013 close: try again (through the balancer: any instance)."""
    deadline = time.monotonic() + WAIT_S
    attempt = 0
    while time.monotonic() < deadline:
        worker.base = servers[attempt % len(servers)].base
        attempt += 1
        try:
            welcome = await worker.connect()
        except OSError:
            await asyncio.sleep(0.5)  # the instance is gone: the page backs off the same way
            continue
        if welcome["type"] == "welcome":
            return
        await worker.wait_closed(timeout=WAIT_S)  # refused while no instance owns the run yet: 1013
        assert worker.closed_code in (1012, 1013), (worker.closed_code, welcome)
        await asyncio.sleep(0.5)
    raise AssertionError(f"worker {worker.worker_id} could not resume on any instance within {WAIT_S:.0f} s")


async def test_partners_on_instances_that_do_not_own_the_run_chat_with_every_guarantee(
    trio: list[ServerProcess], store: Store
) -> None:
    owner, (x, y) = await owner_and_others(store, trio)
    crowd = Crowd(x.base)
    try:
        a = await worker(crowd, x, "W-a").start()  # join and socket on x
        await a.wait_state("waiting", timeout=WAIT_S)
        b = await worker(crowd, y, "W-b").start()  # join and socket on y
        await asyncio.gather(a.wait_state("in_task", timeout=WAIT_S), b.wait_state("in_task", timeout=WAIT_S))
        said = await chat(a, b, rounds=3)
        await each_saw_and_the_store_holds(store, a, b, said)
        # the joins and sockets were relayed: the run stayed on its owner
        assert await LeaseStore(store).live_owner("chat", time.time()) == instance_id(owner)
    finally:
        await crowd.close()


async def test_a_newer_socket_on_another_instance_replaces_the_older_and_a_resend_is_stored_once(
    trio: list[ServerProcess], store: Store
) -> None:
    owner, (x, y) = await owner_and_others(store, trio)
    crowd = Crowd(x.base)
    try:
        a = await worker(crowd, x, "W-a").start()
        await a.wait_state("waiting", timeout=WAIT_S)
        b = await worker(crowd, x, "W-b").start()
        await asyncio.gather(a.wait_state("in_task", timeout=WAIT_S), b.wait_state("in_task", timeout=WAIT_S))
        await a.wait_turn(1, timeout=WAIT_S)
        first = await a.say("said once", client_id="c-once")
        echo = await a.wait_stored(first, timeout=WAIT_S)

        # The same page opens a second socket through another instance: the older one closes with 4409.
        older = a.ws
        a.base = y.base
        seen = len(a.frames)
        welcome = await a.connect(last_seq=0)  # a resume from the start: everything replayed once
        assert welcome["type"] == "welcome"
        assert older is not None
        await asyncio.wait_for(older.wait_closed(), WAIT_S)
        assert older.close_code == 4409
        # The resend of the stored message is acked with the same message id, not stored again.
        await a.say("said once", client_id="c-once")
        ack = await a.wait_frame(lambda f: f.get("type") == "ack" and f.get("client_id") == "c-once",
                                 after=seen, timeout=WAIT_S)
        assert ack["message_id"] == echo["message_id"]
        agent = await store.get_agent(a.agent_id)
        assert agent is not None
        texts = [m.text for m in await store.messages(agent.conversation_id)]
        assert texts.count("said once") == 1
        assert a.gaps == []
        # and b, on the owner, received it exactly once
        await b.wait_frame(lambda f: f.get("type") == "message" and f.get("text") == "said once", timeout=WAIT_S)
        assert [m["text"] for m in b.chat()].count("said once") == 1
        assert owner.proc is not None and owner.proc.poll() is None
    finally:
        await crowd.close()


async def test_redis_restarted_mid_run_loses_nothing_acked(
    pg_url: str, tmp_path: Path, store: Store, redis_server: RedisServer
) -> None:
    servers = start_instances(2, db_url=pg_url, data_dir=tmp_path, redis_url=redis_server.url)
    crowd = Crowd(servers[0].base)
    try:
        owner, (other,) = await owner_and_others(store, servers)
        a = await worker(crowd, other, "W-a").start()  # relayed
        await a.wait_state("waiting", timeout=WAIT_S)
        b = await worker(crowd, owner, "W-b").start()  # served directly
        await asyncio.gather(a.wait_state("in_task", timeout=WAIT_S), b.wait_state("in_task", timeout=WAIT_S))
        said = await chat(a, b, rounds=1)

        redis_server.stop()
        assert await a.wait_closed(timeout=WAIT_S) == 1012  # the relayed socket starts over
        redis_server.start()
        await reconnect(a, [other])  # through the same instance: relayed again once Redis is back
        said += await chat(a, b, rounds=2, first=1)

        await each_saw_and_the_store_holds(store, a, b, said)
    finally:
        await crowd.close()
        for server in servers:
            server.stop()


async def test_the_owner_sigkilled_mid_conversation_another_takes_over_and_the_conversation_continues(
    trio: list[ServerProcess], store: Store
) -> None:
    owner, others = await owner_and_others(store, trio)
    x, y = others
    crowd = Crowd(x.base)
    try:
        a = await worker(crowd, x, "W-a").start()
        await a.wait_state("waiting", timeout=WAIT_S)
        b = await worker(crowd, y, "W-b").start()
        await asyncio.gather(a.wait_state("in_task", timeout=WAIT_S), b.wait_state("in_task", timeout=WAIT_S))
        said = await chat(a, b, rounds=1)
        answered = {w.worker_id: set(w.turns) for w in (a, b)}  # every turn so far was answered or is stale

        owner.kill()
        # The relaying instances notice the owner is gone and close the relayed sockets: the pages resume.
        assert await a.wait_closed(timeout=WAIT_S) in (1012, 1011)
        assert await b.wait_closed(timeout=WAIT_S) in (1012, 1011)
        new_owner, _ = await owner_and_others(store, others)
        assert new_owner in others
        for w in (a, b):
            await reconnect(w, others)

        # The new owner replays the conversation's world: it goes on where it was, to its end.
        async def take_turn(w: Worker, text: str = "", data: dict[str, object] | None = None) -> None:
            turn = await w.wait_frame(lambda f: f["type"] == "turn" and f["turn_id"] not in answered[w.worker_id],
                                      timeout=WAIT_S)
            answered[w.worker_id].add(turn["turn_id"])
            await w.wait_stored(await w.say(text, data), timeout=WAIT_S)

        for i in (1, 2):
            for speaker, partner in ((a, b), (b, a)):
                text = f"{speaker.worker_id} line {i}"
                await take_turn(speaker, text)
                await partner.wait_frame(lambda f, t=text: f.get("text") == t, timeout=WAIT_S)
                said.append(text)
        survey = {"form": {"enjoyed": 5, "partner_engaged": "Yes", "comment": ""}}
        await asyncio.gather(take_turn(a, data=survey), take_turn(b, data=survey))
        for w in (a, b):
            await w.wait_state("done", timeout=WAIT_S)
            await w.send({"type": "submit"})
            await w.wait_state("submitted", timeout=WAIT_S)
        await each_saw_and_the_store_holds(store, a, b, said)
        agent = await store.get_agent(a.agent_id)
        assert agent is not None
        conversation = await store.get_conversation(agent.conversation_id)
        assert conversation is not None and conversation.state == "completed"
        saved = await store.world_data(conversation.id)
        assert saved is not None and [line["text"] for line in saved["dialogue"]] == said
    finally:
        await crowd.close()
