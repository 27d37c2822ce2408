"""A real Parley server serving the task modules under test, a fake LLM endpoint, and worker helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.store import Store
from tests.conftest import make_settings
from tests.support.client import Crowd, Worker
from tests.support.server import LiveServer, serve
from tests.worlds import tasks
from tests.worlds.fake_llm import FakeLLM, fake_llm

Frame = dict[str, Any]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


@pytest.fixture
def worlds_server(db_url: str, tmp_path: Path, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setitem(tasks.LLM, "base_url", llm.base_url)
    with serve(make_settings(db_url, tmp_path, tasks.RUNS)) as server:
        yield server


@pytest.fixture
async def players(worlds_server: LiveServer) -> AsyncIterator[Players]:
    crowd = Crowd(worlds_server.base)
    try:
        yield Players(crowd)
    finally:
        await crowd.close()


class Player:
    """A simulated worker that answers its turns one after another."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.turns = 0

    async def turn(self, timeout: float = 10.0) -> Frame:
        self.turns += 1
        return await self.worker.wait_turn(self.turns, timeout=timeout)

    async def answer(self, text: str = "", data: Frame | None = None) -> Frame:
        """Wait for the next turn, answer it, and return the turn event."""
        turn = await self.turn()
        await self.worker.say(text, data)
        return turn

    async def wait_message(self, match: Any, timeout: float = 10.0) -> Frame:
        return await self.worker.wait_frame(lambda f: f["type"] == "message" and match(f), timeout=timeout)

    def messages(self, kind: str | None = None) -> list[Frame]:
        return [m for m in self.worker.chat() if kind is None or m["kind"] == kind]


class Players:
    def __init__(self, crowd: Crowd) -> None:
        self.crowd = crowd

    async def join(self, run_id: str, worker_id: str) -> Player:
        return Player(await self.crowd.start(run_id, worker_id))


async def record_of(store: Store, player: Player) -> dict[str, Any]:
    """The world data saved for the conversation this player took part in."""
    agent = await store.get_agent(player.worker.agent_id)
    assert agent is not None and agent.conversation_id
    data = await store.world_data(agent.conversation_id)
    assert data is not None, "the world saved nothing"
    return data
