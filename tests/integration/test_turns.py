"""A turn takes exactly one answer, however many sockets one agent has open (tabs, scripts)."""

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from server.protocol import PROTOCOL_VERSION
from server.store import Store
from tests.conftest import make_settings
from tests.support.client import Crowd
from tests.support.server import LiveServer, serve

TABS = 10
TURNS = 5


@pytest.fixture
def live5(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    # Ten tabs answering five turns send more frames than one agent's flood limit lets through in a few
    # seconds (docs/protocol.md): raised here, since this test is about turns, not floods.
    settings = make_settings(db_url, tmp_path, {"chat5": "tests.support.tasks:chat_five"})
    with serve(settings.model_copy(update={"rate_burst": 1000})) as server:
        yield server


async def _answer_from_every_tab(live: LiveServer, token: str, turn: int) -> list[dict[str, Any]]:
    """Every tab connects at once and sends its answer right behind its hello, as a script would; the
    frames each tab received."""
    async def answer(index: int) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with websockets.connect(live.ws_url) as ws:
            await ws.send(json.dumps({"type": "hello", "v": PROTOCOL_VERSION, "token": token, "last_seq": 0}))
            client_id = f"t{turn}-{index}"
            with contextlib.suppress(websockets.ConnectionClosed):  # replaced by a later tab meanwhile
                await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": f"turn {turn}"}))
                async with asyncio.timeout(10):  # until the answer is stored or refused, or the tab replaced
                    async for raw in ws:
                        frames.append(json.loads(raw))
                        if frames[-1].get("client_id") == client_id:
                            break
        return frames

    results = await asyncio.gather(*(answer(i) for i in range(TABS)), return_exceptions=True)
    return [f for r in results if not isinstance(r, BaseException) for f in r]


async def test_ten_sockets_of_one_agent_store_one_answer_per_turn_and_it_is_delivered(
    live5: LiveServer, store: Store
) -> None:
    crowd = Crowd(live5.base)
    try:
        a = await crowd.start("chat5", "W-tabs")
        await a.wait_state("waiting")
        b = await crowd.start("chat5", "W-partner")
        await b.wait_state("in_task")
        frames: list[dict[str, Any]] = []
        for turn in range(1, TURNS + 1):
            await a.wait_turn(turn, timeout=15)  # `a` watches the stream: its turn `turn` is open
            frames += await _answer_from_every_tab(live5, a.token, turn)
            await b.wait_turn(turn, timeout=15)  # the world went on to the partner: one answer was taken
            await b.say(f"reply {turn}")
            await a.connect()  # the watcher takes the stream back for the next turn
        await b.wait_turn(TURNS + 1, timeout=15)  # the survey: every turn of the chat is over
        conversation = (await store.conversations("chat5"))[0]
        stored = [m for m in await store.messages(conversation.id) if m.agent_id == a.agent_id]
        delivered = [m for m in b.chat() if m["kind"] == "chat" and not m["mine"]]
        refused = sum(1 for f in frames if f.get("code") == "not_your_turn")
        figures = f"{TABS} sockets x {TURNS} turns: stored {len(stored)}, delivered {len(delivered)}, refused {refused}"
        assert len(stored) == TURNS, figures
        assert [m.id for m in stored] == [m["message_id"] for m in delivered], figures
    finally:
        await crowd.close()
