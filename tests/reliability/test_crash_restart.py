"""SIGKILL the server mid-conversation, start it again on the same database: nothing acked is lost,
live conversations of a task that is not replayable are closed with their workers able to submit, waiting
workers carry on."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.store import Store
from tests.support.client import Crowd, Worker
from tests.support.process import ServerProcess, running

RUNS = {"chat": "tests.support.tasks:chat_closing_restart"}


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with running(db_url, tmp_path, RUNS) as proc:
        yield proc


async def _reconnect(worker: Worker) -> None:
    """What the page does: retry until the server is back, resuming from the last seq it has."""
    for _ in range(100):
        try:
            await worker.connect()
            return
        except OSError:
            await asyncio.sleep(0.1)  # the server is restarting; the page backs off the same way
    raise AssertionError("could not reconnect to the restarted server")


async def test_acked_messages_survive_two_sigkills_and_workers_can_submit(
    server: ServerProcess, store: Store
) -> None:
    crowd = Crowd(server.base)
    acked: list[str] = []
    try:
        for restart in range(2):
            a = await crowd.start("chat", f"W-a{restart}")
            await a.wait_state("waiting")
            b = await crowd.start("chat", f"W-b{restart}")
            await b.wait_state("in_task")
            await a.wait_turn(1)
            acked.append((await a.wait_stored(await a.say(f"before crash {restart}")))["message_id"])
            await b.wait_turn(1)
            late = await crowd.start("chat", f"W-c{restart}")  # waiting when the crash comes
            await late.wait_state("waiting")

            server.kill()
            await asyncio.gather(a.wait_closed(), b.wait_closed(), late.wait_closed())
            server.start()

            for w in (a, b):
                await _reconnect(w)
                closed = await w.wait_state("closed")
                assert closed["can_submit"] is True and "restarted" in closed["text"]
                await w.send({"type": "submit"})
                await w.wait_state("submitted")
                assert w.duplicates == 0
            await _reconnect(late)
            # the waiting worker is back in the waiting room and released with a way to submit
            await late.wait_state("waiting_expired", timeout=15)
    finally:
        await crowd.close()

    for message_id in acked:
        assert await store.message_exists(message_id)
    conversations = await store.conversations("chat")
    assert [c.state for c in conversations] == ["closed", "closed"]
