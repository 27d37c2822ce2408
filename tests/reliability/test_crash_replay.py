"""SIGKILL the server at many points of chat_demo, model_chat (an LLM bot on the test's fake OpenAI-compatible
server) and multi_agent_dialog conversations, and inside the store's group commit; start it again on the
same database: every conversation continues to its natural end by replaying its world (server/replay.py).

After the restart every worker's stream is gap-free and without duplicates, each worker has every line its
partners had acked exactly once, and each saved record equals the one a conversation without the crash
saved (message ids aside). The model's requests after the restart carry the whole conversation, its own
earlier replies included, as they would have without it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.store import Conversation, Store
from tests.support.client import Crowd, Worker
from tests.support.process import ServerProcess, running
from tests.worlds.fake_llm import FakeLLM, fake_llm

log = logging.getLogger(__name__)

RUNS = {
    "chat": "tests.support.tasks:chat_replay",
    "model": "tests.support.tasks:model_chat_replay",
    "dialog": "tests.support.tasks:dialog_replay",
}
WAIT_S = 60.0  # a bound for any one thing the server does for a worker, on a busy 2-core machine
ANSWER_KEYS = {"rating", "choice", "checkboxes", "form"}

# Each role's turns in a whole conversation, and the order in which the roles take them.
STEPS = {
    "chat": ["Speaker 1", "Speaker 2", "Speaker 1", "Speaker 2", "Speaker 1", "Speaker 2"],  # 2 lines, survey
    "model": ["Worker"] * 7,  # three lines, each followed by the labels of the bot's reply, then the rating
    "dialog": ["Human 1", "Human 2", "Human 1", "Human 2"],  # a line each, Human 1 ends it, Human 2's last
}
ENDS_WITH_DONE = {("dialog", "Human 1"): 2}  # the role's second line ends the conversation


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


@pytest.fixture
def server(db_url: str, tmp_path: Path, llm: FakeLLM) -> Iterator[ServerProcess]:
    with running(db_url, tmp_path, RUNS, FAKE_LLM_URL=llm.base_url) as proc:
        yield proc


@dataclass
class Player:
    """A worker's page answering its turns: a line of text, or the first option of any widget."""

    worker: Worker
    run_id: str
    role: str = ""
    answered: set[str] = field(default_factory=set)
    lines: int = 0
    steps: int = 0
    since: int = 0  # turns count from this frame on (the current connection)
    first_turn_at: float | None = None

    async def enter(self) -> None:
        entered = await self.worker.wait_state("in_task", timeout=WAIT_S)
        found = re.search(r"Your role: ([^;.]+)", entered["text"])
        assert found, entered
        self.role = found.group(1)

    async def step(self) -> str:
        turn = await self.worker.wait_frame(
            lambda f: f["type"] == "turn" and f["turn_id"] not in self.answered, after=self.since, timeout=WAIT_S
        )
        if self.first_turn_at is None:
            self.first_turn_at = time.monotonic()
        self.answered.add(turn["turn_id"])
        said, data = self._answer(turn["widget"])
        stored = await self.worker.wait_stored(await self.worker.say(said, data), timeout=WAIT_S)
        self.steps += 1
        return str(stored["message_id"])

    def _answer(self, widget: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kind = widget.get("kind", "text")
        if kind == "text":
            self.lines += 1
            done = ENDS_WITH_DONE.get((self.run_id, self.role)) == self.lines
            return f"{self.role} line {self.lines}{' [DONE]' if done else ''}", {}
        if kind == "form":
            return "", {"form": {f["name"]: _value(f) for f in widget["fields"]}}
        return "", {kind: _value(widget)}

    async def reconnect(self) -> None:
        self.since = len(self.worker.frames)
        self.first_turn_at = None
        for _ in range(600):
            try:
                await self.worker.connect()
                return
            except OSError:
                await asyncio.sleep(0.1)  # the server is restarting; the page backs off the same way
        raise AssertionError("could not reconnect to the restarted server")


def _value(spec: dict[str, Any]) -> Any:
    kind = spec.get("kind", "text")
    if kind == "rating":
        return spec["min"]
    if kind == "choice":
        return spec["options"][0]
    if kind == "checkboxes":
        return spec["options"][:1]
    return "fine"


async def _group(crowd: Crowd, run_id: str, name: str) -> list[Player]:
    """The workers of one conversation, joined one after another so that they are matched together."""
    roles = len(set(STEPS[run_id]))
    players = []
    for i in range(roles):
        worker = await crowd.start(run_id, f"{name}-{i}")
        players.append(Player(worker, run_id))
        if i < roles - 1:
            await worker.wait_state("waiting", timeout=WAIT_S)
    await asyncio.gather(*(p.enter() for p in players))
    return players


async def _play(players: list[Player], upto: int) -> None:
    """Play the conversation's turns from where each player is until `upto` turns of it are taken."""
    steps = STEPS[players[0].run_id][:upto]
    by_role = {p.role: p for p in players}

    async def play(player: Player) -> None:
        while player.steps < steps.count(player.role):
            await player.step()

    await asyncio.gather(*(play(by_role[role]) for role in set(steps)))


async def _finish(players: list[Player]) -> None:
    await _play(players, len(STEPS[players[0].run_id]))
    for player in players:
        await player.worker.wait_state("done", timeout=WAIT_S)
        await player.worker.send({"type": "submit"})
        await player.worker.wait_state("submitted", timeout=WAIT_S)


def _normalized(record: dict[str, Any] | None, context: Any) -> str:
    """The record with its message ids numbered in order of appearance and its topic (the conversation's
    context) named: conversations of one script differ in those only."""
    assert record is not None
    if "topic" in record:
        assert record["topic"] == context
        record = {**record, "topic": "<context>"}
    dumped = json.dumps(record, sort_keys=True)
    ids: dict[str, str] = {}
    return re.sub(r"[0-9a-f]{32}", lambda m: ids.setdefault(m.group(0), f"<id{len(ids)}>"), dumped)


async def _conversation_of(store: Store, player: Player) -> Conversation:
    row = await store.get_agent(player.worker.agent_id)
    assert row is not None
    conversation = await store.get_conversation(row.conversation_id)
    assert conversation is not None
    return conversation


async def _check_conversation(store: Store, players: list[Player], baseline: str) -> None:
    conversation = await _conversation_of(store, players[0])
    assert conversation.state == "completed", conversation
    assert _normalized(await store.world_data(conversation.id), conversation.context) == baseline
    messages = await store.messages(conversation.id)
    for player in players:
        w = player.worker
        assert w.gaps == [] and w.duplicates == 0, (player.role, w.gaps, w.duplicates)
        shown = [m["message_id"] for m in w.chat()]
        others = [m.id for m in messages if m.agent_id != w.agent_id and not ANSWER_KEYS & m.data.keys()]
        assert all(shown.count(m) == 1 for m in others), f"{player.role} misses or repeats a partner's line"
        mine = [m.client_id for m in messages if m.agent_id == w.agent_id]
        assert len(mine) == len(set(mine)) == player.steps  # every answer stored once


def _check_model_requests(llm: FakeLLM) -> None:
    """Every request the model got holds the conversation so far: its own replies between the worker's."""
    assert llm.requests
    for request in llm.requests:
        turns = request["messages"][1:]  # after the system prompt
        roles = [m["role"] for m in turns]
        assert roles == ["user", "assistant"] * (len(turns) // 2) + ["user"], roles
        for asked, replied in zip(turns[0::2], turns[1::2], strict=False):
            assert replied["content"] == f"Model heard: {asked['content']}"


async def test_conversations_killed_at_every_step_continue_to_their_natural_end(
    server: ServerProcess, store: Store, llm: FakeLLM
) -> None:
    crowd = Crowd(server.base)
    try:
        # A conversation of each task without a crash: what it saves is the record to match.
        baselines = {}
        for run_id in RUNS:
            players = await _group(crowd, run_id, f"{run_id}-plain")
            await _finish(players)
            plain = await _conversation_of(store, players[0])
            baselines[run_id] = _normalized(await store.world_data(plain.id), plain.context)

        # One conversation of each task stopped at each of its steps (0: just paired), all killed at once.
        groups = []
        for run_id, steps in STEPS.items():
            for upto in range(len(steps)):
                groups.append(await _group(crowd, run_id, f"{run_id}-{upto}"))
                await _play(groups[-1], upto)
        server.kill()
        for group in groups:
            for player in group:
                await player.worker.wait_closed(timeout=WAIT_S)

        restarted_at = time.monotonic()
        server.start()
        healthy_at = time.monotonic()
        everyone = [p for group in groups for p in group]
        await asyncio.gather(*(p.reconnect() for p in everyone))
        await asyncio.gather(*(_finish(group) for group in groups))
        turns = [p.first_turn_at for p in everyone if p.first_turn_at is not None]
        log.warning(
            "replay after SIGKILL: %d conversations continued; from the new process's start (%.2f s until it "
            "answered /healthz) to the first live turn %.2f s, to the last worker's %.2f s",
            len(groups), healthy_at - restarted_at, min(turns) - restarted_at, max(turns) - restarted_at,
        )
    finally:
        await crowd.close()

    for group in groups:
        await _check_conversation(store, group, baselines[group[0].run_id])
    closed = [c for run_id in RUNS for c in await store.conversations(run_id) if c.state != "completed"]
    assert closed == []
    _check_model_requests(llm)
    assert "diverged" not in server.log.read_text()


@contextlib.asynccontextmanager
async def _message_table_locked(db_url: str) -> AsyncIterator[None]:
    """Another connection holds the message table: a group commit that writes a chat line waits inside its
    transaction until this lets go."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("LOCK TABLE message IN ACCESS EXCLUSIVE MODE"))
            yield
            await conn.rollback()
    finally:
        await engine.dispose()


async def _waiting_on_the_lock(db_url: str) -> bool:
    """PostgreSQL says a backend waits on a lock to insert a chat line (SQLite cannot say)."""
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            waiting = await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO message%'"
            ))
            return bool(waiting.scalar())
    finally:
        await engine.dispose()


async def test_a_kill_inside_the_group_commit_loses_nothing_and_the_resent_line_is_stored_once(
    server: ServerProcess, store: Store, db_url: str
) -> None:
    crowd = Crowd(server.base)
    try:
        players = await _group(crowd, "chat", "locked")
        first, second = sorted(players, key=lambda p: p.role)
        await _play(players, 1)  # Speaker 1's line is stored
        turn = await second.worker.wait_frame(lambda f: f["type"] == "turn", after=second.since, timeout=WAIT_S)
        second.answered.add(turn["turn_id"])
        async with _message_table_locked(db_url):
            client_id = await second.worker.say("Speaker 2 line 1")
            if db_url.startswith("postgresql"):
                deadline = time.monotonic() + WAIT_S
                while not await _waiting_on_the_lock(db_url):
                    assert time.monotonic() < deadline, "the server's write never reached the locked table"
                    await asyncio.sleep(0.05)  # polling another process's lock wait
            else:
                await asyncio.sleep(1.0)  # time for the frame to reach the writer, which SQLite cannot show
            assert not [f for f in second.worker.frames if f.get("client_id") == client_id]  # not acked
            server.kill()
        server.start()
        for player in players:
            await player.reconnect()
        # The page resends what was never acked; the turn it answers is the one the replay opened again.
        turn = await second.worker.wait_frame(
            lambda f: f["type"] == "turn" and f["turn_id"] not in second.answered, after=second.since, timeout=WAIT_S
        )
        second.answered.add(turn["turn_id"])
        second.lines, second.steps = 1, 1
        resent = await second.worker.say("Speaker 2 line 1", client_id=client_id)
        await second.worker.wait_stored(resent, timeout=WAIT_S)
        await first.worker.wait_frame(lambda f: f.get("text") == "Speaker 2 line 1", timeout=WAIT_S)
        await _finish(players)
    finally:
        await crowd.close()
    conversation = await _conversation_of(store, second)
    assert len([m for m in await store.messages(conversation.id) if m.client_id == client_id]) == 1
    survey = {"enjoyed": 1, "partner_engaged": "Yes", "comment": "fine"}  # the first option of each field
    expected = {
        "topic": "<context>",
        "dialogue": [{"speaker": f"Speaker {n % 2 + 1}", "text": f"Speaker {n % 2 + 1} line {n // 2 + 1}"}
                     for n in range(4)],
        "survey": {"Speaker 1": survey, "Speaker 2": survey},
    }
    await _check_conversation(store, players, json.dumps(expected, sort_keys=True))
    assert [m["text"] for m in first.worker.chat() if m["sender"] == "Speaker 2"] == [
        "Speaker 2 line 1", "Speaker 2 line 2"
    ]
