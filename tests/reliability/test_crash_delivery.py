"""SIGKILL the server while pairs chat as fast as they can, start it again: every chat line the record holds
reaches the partner's stream before the restart closes the conversation (a task that is not replayable;
tests/reliability/test_crash_replay.py has the conversations that continue)."""

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.store import Store
from tests.support.client import Crowd, Worker
from tests.support.process import ServerProcess, running

RUNS = {"chat": "tests.support.tasks:chat_endless_closing"}
PAIRS = 8
ACKED_BEFORE_KILL = 150  # chat lines stored and acked, over all pairs, before the kill


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with running(db_url, tmp_path, RUNS) as proc:
        yield proc


async def _chat(worker: Worker, acked: list[str], enough: asyncio.Event) -> None:
    """Answer every turn the moment it opens, until the socket dies."""
    turn = 0
    with contextlib.suppress(Exception):  # the kill ends this worker's chat wherever it is
        while True:
            turn += 1
            await worker.wait_turn(turn, timeout=30)
            client_id = await worker.say(f"{worker.worker_id} line {turn}")
            acked.append((await worker.wait_stored(client_id, timeout=30))["message_id"])
            if len(acked) >= ACKED_BEFORE_KILL:
                enough.set()


async def _reconnect(worker: Worker) -> None:
    for _ in range(300):
        try:
            await worker.connect()
            return
        except OSError:
            await asyncio.sleep(0.1)  # the server is restarting; the page backs off the same way
    raise AssertionError("could not reconnect to the restarted server")


async def _pair_up(crowd: Crowd) -> list[Worker]:
    workers: list[Worker] = []
    for i in range(PAIRS):
        a = await crowd.start("chat", f"W{i}a")
        await a.wait_state("waiting")
        b = await crowd.start("chat", f"W{i}b")
        await asyncio.gather(a.wait_state("in_task"), b.wait_state("in_task"))
        workers += [a, b]
    return workers


async def test_every_stored_line_reaches_the_partner_before_a_restart_closes_the_conversation(
    server: ServerProcess, store: Store
) -> None:
    crowd = Crowd(server.base)
    try:
        workers = await _pair_up(crowd)
        acked: list[str] = []
        enough = asyncio.Event()
        chats = [asyncio.create_task(_chat(w, acked, enough)) for w in workers]
        await asyncio.wait_for(enough.wait(), 60)  # the pairs chat while the server is killed
        server.kill()
        await asyncio.gather(*chats)
        server.start()
        await asyncio.gather(*(_reconnect(w) for w in workers))
        await asyncio.gather(*(w.wait_state("closed", timeout=30) for w in workers))

        undelivered = 0
        for worker in workers:
            closed_at = next(seq for seq, e in worker.events.items() if e.get("state") == "closed")
            seen = {e["message_id"] for seq, e in worker.events.items() if e["type"] == "message" and seq < closed_at}
            row = await store.get_agent(worker.agent_id)
            assert row is not None
            theirs = [m for m in await store.messages(row.conversation_id) if m.agent_id not in (None, worker.agent_id)]
            undelivered += sum(1 for m in theirs if m.id not in seen)
        assert undelivered == 0, f"{undelivered} stored chat lines never reached the partner ({len(acked)} acked)"
    finally:
        await crowd.close()
