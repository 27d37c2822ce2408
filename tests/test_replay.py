"""Conversations that survive a restart (server/replay.py), in the test's own process: the run is stopped and
a new one started on the same database, as a restart does, and pages reconnect from their last `seq`.

The SIGKILL versions, with real server processes, are in tests/reliability/test_crash_replay.py."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from server import replay
from server.protocol import Say
from server.runner import Run
from server.states import AgentState, ConversationState
from server.store import Store
from tests.support.inproc import Page, arrive, start_run
from worlds import chat_demo
from worlds.base import Message, Task, Timeouts, World, choice, rating, text_input
from worlds.bots.protocol import MessageBot

TIMEOUTS = Timeouts(turn=30.0, waiting=30.0, onboarding=30.0, reconnect_grace=30.0)
ANSWERS = {"rating", "choice", "checkboxes", "form"}
SURVEY = {"enjoyed": 4, "partner_engaged": "Yes", "comment": ""}


def chat_task() -> Task:
    return replace(chat_demo.make_task(turns_each=2, turn_timeout=30.0, waiting_timeout=30.0), timeouts=TIMEOUTS)


@dataclass
class Seat:
    """One worker's page across restarts: every page it had, and the turns it answered."""

    agent_id: str
    pages: list[Page]
    answered: set[str] = field(default_factory=set)

    @property
    def page(self) -> Page:
        return self.pages[-1]

    def frames(self) -> list[dict[str, Any]]:
        return [f for page in self.pages for f in page.frames]

    def stream(self) -> list[int]:
        return [f["seq"] for f in self.frames() if "seq" in f]

    def chat_ids(self) -> list[str]:
        return [f["message_id"] for f in self.frames() if f["type"] == "message"]

    async def open_turn(self) -> dict[str, Any]:
        """A turn this worker has not answered (waiting for one to open)."""
        async def find() -> dict[str, Any]:
            while True:
                for frame in self.page.frames:
                    if frame["type"] == "turn" and frame["turn_id"] not in self.answered:
                        return frame
                self.page.arrived.clear()
                await self.page.arrived.wait()

        return await asyncio.wait_for(find(), 10)

    async def answer(self, run: Run, text: str = "", data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Wait for a turn this worker has not answered, answer it, and return the echo (its ack)."""
        turn = await self.open_turn()
        self.answered.add(turn["turn_id"])
        client_id = uuid.uuid4().hex
        await run.receive(self.agent_id, Say(type="message", client_id=client_id, text=text, data=data or {}))
        return await self.page.wait("message", client_id=client_id, mine=True)

    async def reconnect(self, run: Run) -> None:
        page = Page()
        await run.connect(self.agent_id, page, self.page.last_seq)
        self.pages.append(page)


async def _pair(run: Run, n: int) -> tuple[Seat, Seat]:
    a, page_a = await arrive(run, f"w{n}a")
    await page_a.wait("state", state="waiting")
    b, page_b = await arrive(run, f"w{n}b")
    await page_a.wait("state", state="in_task")
    await page_b.wait("state", state="in_task")
    first, second = sorted((Seat(a, [page_a]), Seat(b, [page_b])), key=lambda s: run.humans[s.agent_id].role)
    return first, second  # Speaker 1, Speaker 2


async def _restart(run: Run, store: Store, task: Task, seats: list[Seat]) -> Run:
    """The process stops (the database is what remains); a new one takes the run and the pages come back."""
    await run.stop()
    again = await start_run(store, task)
    for seat in seats:
        await seat.reconnect(again)
    return again


# The chat_demo script: four lines, then both answer the survey.
STEPS: list[tuple[int, str]] = [(0, "line 1"), (1, "line 2"), (0, "line 3"), (1, "line 4"), (0, ""), (1, "")]


async def _play(run: Run, seats: tuple[Seat, Seat], steps: list[tuple[int, str]]) -> None:
    for who, text in steps:
        await seats[who].answer(run, text, None if text else {"form": SURVEY})


def _expected(index: int) -> dict[str, Any]:
    """What chat_demo saves for the script above."""
    return {
        "topic": chat_demo.TOPICS[index % len(chat_demo.TOPICS)],
        "dialogue": [{"speaker": f"Speaker {who + 1}", "text": text} for who, text in STEPS if text],
        "survey": {"Speaker 1": SURVEY, "Speaker 2": SURVEY},
    }


async def _check_streams(store: Store, seats: tuple[Seat, Seat]) -> None:
    """Each worker's stream is gap-free and duplicate-free across its pages; each has every line its partner
    had stored exactly once."""
    for seat in seats:
        stream = seat.stream()
        assert stream == list(range(1, len(stream) + 1)), f"{seat.agent_id}: stream {stream}"
    for seat, partner in itertools.permutations(seats):
        row = await store.get_agent(partner.agent_id)
        assert row is not None
        theirs = [m.id for m in await store.messages(row.conversation_id)
                  if m.agent_id == partner.agent_id and "form" not in m.data]  # chat lines, not survey answers
        ids = seat.chat_ids()
        assert all(ids.count(m) == 1 for m in theirs), f"{seat.agent_id} misses or repeats a partner line"


@pytest.mark.parametrize("restart_after", range(len(STEPS)))
async def test_a_restart_at_any_step_continues_the_conversation_to_the_record_a_run_without_it_saves(
    store: Store, restart_after: int
) -> None:
    task = chat_task()
    run = await start_run(store, task)
    try:
        # First a conversation with no restart: what it saves is the record to match.
        plain = await _pair(run, 0)
        await _play(run, plain, STEPS)
        await plain[0].page.wait("state", state="done")
        seats = await _pair(run, 1)
        await _play(run, seats, STEPS[:restart_after])
        run = await _restart(run, store, task, list(seats))
        await _play(run, seats, STEPS[restart_after:])
        for seat in seats:
            await seat.page.wait("state", state="done")
    finally:
        await run.stop()

    first, second = await store.conversations("r")  # in the order they were made
    assert [first.state, second.state] == [ConversationState.COMPLETED, ConversationState.COMPLETED]
    assert await store.world_data(first.id) == _expected(first.index)
    assert await store.world_data(second.id) == _expected(second.index)
    await _check_streams(store, seats)
    lines = [m.text for m in await store.messages(second.id) if m.text]
    assert lines == [text for _, text in STEPS if text]  # each line stored once


async def test_a_conversation_restarted_twice_continues(store: Store) -> None:
    task = chat_task()
    run = await start_run(store, task)
    try:
        seats = await _pair(run, 0)
        await _play(run, seats, STEPS[:1])
        run = await _restart(run, store, task, list(seats))
        await _play(run, seats, STEPS[1:3])
        run = await _restart(run, store, task, list(seats))
        await _play(run, seats, STEPS[3:])
        await seats[1].page.wait("state", state="done")
    finally:
        await run.stop()
    (conversation,) = await store.conversations("r")
    assert conversation.state == ConversationState.COMPLETED
    assert await store.world_data(conversation.id) == _expected(conversation.index)
    await _check_streams(store, seats)


# ---- what the replay checks ------------------------------------------------------------------------------

VISITS = {"n": 0}


class CountsItsVisits(World):
    """Not replayable in truth: it shows each build of itself a different line (state outside the world)."""

    async def run(self) -> None:
        VISITS["n"] += 1
        await self.broadcast(Message(kind="system", sender="Task", text=f"visit {VISITS['n']}"))
        for _ in range(3):
            for agent in self.agents:
                reply = await agent.act(prompt="Say something.", widget=text_input())
                await self.broadcast(reply, exclude=agent)
        await self.save({"done": True})


ASK_RATING = {"now": False}


class ChangesItsWidget(World):
    """Asks for a choice the first time it runs and a rating after a restart."""

    async def run(self) -> None:
        for _ in range(3):
            widget = rating(1, 5) if ASK_RATING["now"] else choice(["yes", "no"])
            for agent in self.agents:
                await agent.act(prompt="Answer.", widget=widget)


def _two_person(world: type[World]) -> Task:
    return Task(name="replay-check", title="Replay check", description="A world the replay checks.",
                world=world, roles=["Speaker 1", "Speaker 2"], timeouts=TIMEOUTS, replayable=True)


async def _diverges(store: Store, task: Task, before: list[tuple[int, str, dict[str, Any] | None]],
                    between: Any = None) -> tuple[tuple[Seat, Seat], str]:
    run = await start_run(store, task)
    try:
        seats = await _pair(run, 0)
        for who, text, data in before:
            await seats[who].answer(run, text, data)
        await seats[len(before) % 2].open_turn()  # the world has done all it does with what it was given
        (conversation,) = await store.conversations("r")
        messages, saved = await store.messages(conversation.id), await store.world_data(conversation.id)
        heads = [await store.head_seq(s.agent_id) for s in seats]
        shown = [set(s.chat_ids()) for s in seats]
        if between is not None:
            between()
        run = await _restart(run, store, task, list(seats))
        for seat in seats:
            closed = await seat.page.wait("state", state="closed")
            assert closed["can_submit"] is True and "restarted" in closed["text"]
    finally:
        await run.stop()
    (conversation,) = await store.conversations("r")
    assert conversation.state == ConversationState.CLOSED
    # Nothing the conversation had stored changed: its lines, its saved result; each stream only gained the
    # partner's stored lines it had not been shown yet (as any restart that closes a conversation gives them)
    # and the event that closed it.
    assert await store.messages(conversation.id) == messages
    assert await store.world_data(conversation.id) == saved
    for seat, head, seen in zip(seats, heads, shown, strict=True):
        added = [e for _, e in await store.events_after(seat.agent_id, head)]
        lines = [m for m in messages if not ANSWERS & m.data.keys()]  # chat lines, not answers to a widget
        unseen = {m.id for m in lines if m.agent_id not in (None, seat.agent_id)} - seen
        assert [e["message_id"] for e in added[:-1]] == [m.id for m in lines if m.id in unseen], added
        assert added[-1]["state"] == "closed"
    for seat in seats:
        row = await store.get_agent(seat.agent_id)
        assert row is not None and row.state == AgentState.CLOSED
    return seats, conversation.end_reason


async def test_a_world_that_shows_something_else_on_replay_is_closed_and_nothing_stored_changes(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    VISITS["n"] = 0
    with caplog.at_level(logging.ERROR, logger="server.conversations"):
        _, reason = await _diverges(store, _two_person(CountsItsVisits), [(0, "hello", None), (1, "hi", None)])
    assert "diverged" in reason and "visit" in reason
    logged = [r.getMessage() for r in caplog.records if "diverged" in r.getMessage()]
    assert len(logged) == 1 and "'visit 1'" in logged[0] and "'visit 2'" in logged[0], logged


async def test_a_world_that_asks_for_another_widget_on_replay_is_closed(store: Store) -> None:
    ASK_RATING["now"] = False
    try:
        _, reason = await _diverges(
            store, _two_person(ChangesItsWidget), [(0, "", {"choice": "yes"}), (1, "", {"choice": "no"})],
            between=lambda: ASK_RATING.update(now=True),
        )
    finally:
        ASK_RATING["now"] = False
    assert "rating answer" in reason and "choice" in reason


class AsksInAnotherOrder(World):
    """Speaker 1 first the first time it runs; Speaker 2 first after a restart."""

    async def run(self) -> None:
        first, second = (self.agents[1], self.agents[0]) if ASK_RATING["now"] else (self.agents[0], self.agents[1])
        for _ in range(3):
            for agent in (first, second):
                await agent.act(prompt="Say something.", widget=text_input())


async def test_a_world_waiting_on_a_turn_the_record_never_reached_is_closed_after_the_stall_bound(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "STALL_S", 0.5)
    ASK_RATING["now"] = False
    try:
        # Speaker 1 answered; after the restart the world waits for Speaker 2, whose turn the record never
        # reached, while Speaker 1's answer stays untaken.
        _, reason = await _diverges(
            store, _two_person(AsksInAnotherOrder), [(0, "first", None)], between=lambda: ASK_RATING.update(now=True),
        )
    finally:
        ASK_RATING["now"] = False
    assert "waits for Speaker 2's turn" in reason and "'first'" in reason


class PicksAtRandom(World):
    """Shows each worker a number drawn from `self.random`: a replay draws the same one."""

    async def run(self) -> None:
        await self.broadcast(Message(kind="context", sender="Task", text=f"your number: {self.random.random()}"))
        for _ in range(2):
            for agent in self.agents:
                reply = await agent.act(prompt="Say something.", widget=text_input())
                await self.broadcast(reply, exclude=agent)


async def test_a_world_drawing_from_its_own_random_replays_the_same_draws(store: Store) -> None:
    task = _two_person(PicksAtRandom)
    run = await start_run(store, task)
    try:
        seats = await _pair(run, 0)
        await seats[0].answer(run, "one")
        run = await _restart(run, store, task, list(seats))
        for who, text in [(1, "two"), (0, "three"), (1, "four")]:
            await seats[who].answer(run, text)
        await seats[0].page.wait("state", state="done")
    finally:
        await run.stop()
    (conversation,) = await store.conversations("r")
    assert conversation.state == ConversationState.COMPLETED
    numbers = [f["text"] for f in seats[0].frames() if f["type"] == "message" and f["kind"] == "context"]
    assert len(numbers) == 1  # matched on replay, not shown again


# ---- bots and turns --------------------------------------------------------------------------------------

ASKED: list[str] = []


class CountingBot(MessageBot):
    """Replies with how much of the conversation it holds: a bot that lost its history after a restart
    would say a smaller number than a run without the restart."""

    def act(self) -> Message:
        ASKED.append(self.last_text())
        return self.remember(Message(text=f"I hold {len(self.history)} messages", sender=self.role))


class WithBot(World):
    async def run(self) -> None:
        worker, bot = self.agent("Worker"), self.agent("Bot")
        for _ in range(3):
            said = await worker.act(prompt="Say something.", widget=text_input())
            await bot.observe(said)
            reply = await bot.act()
            await worker.observe(reply)
        await self.save({"last": reply.text})


async def test_a_bot_keeps_its_recorded_replies_and_is_not_asked_them_again(store: Store) -> None:
    task = Task(name="with-bot", title="With a bot", description="Chat with a bot.", world=WithBot,
                roles=["Worker"], bots={"Bot": CountingBot}, timeouts=TIMEOUTS, replayable=True)
    ASKED.clear()
    run = await start_run(store, task)
    try:
        agent, page = await arrive(run, "w1")
        seat = Seat(agent, [page])
        await page.wait("state", state="in_task")
        for text in ("one", "two"):
            await seat.answer(run, text)
            await seat.page.wait("message", text=f"I hold {1 if text == 'one' else 3} messages")
        run = await _restart(run, store, task, [seat])
        await seat.answer(run, "three")
        await seat.page.wait("state", state="done")
    finally:
        await run.stop()
    assert ASKED == ["one", "two", "three"]  # its two recorded replies were not asked again
    (conversation,) = await store.conversations("r")
    assert await store.world_data(conversation.id) == {"last": "I hold 5 messages"}
    replies = [f["text"] for f in seat.frames() if f["type"] == "message" and f["sender"] == "Bot"]
    assert replies == ["I hold 1 messages", "I hold 3 messages", "I hold 5 messages"]


async def test_the_first_turn_after_a_restart_counts_down_what_was_left_of_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "RESUME_FLOOR_S", 0.5)
    task = replace(_two_person(PicksAtRandom), timeouts=replace(TIMEOUTS, turn=4.0))
    run = await start_run(store, task)
    try:
        seats = await _pair(run, 0)
        await seats[0].answer(run, "one")
        started = time.monotonic()
        await seats[1].page.wait("turn")
        await asyncio.sleep(1.0)  # the turn's clock runs while the server is down
        run = await _restart(run, store, task, list(seats))
        turn = await seats[1].page.wait("turn")
        elapsed = time.monotonic() - started
        assert 4.0 - elapsed - 0.5 <= turn["timeout_s"] <= 4.0 - elapsed + 0.05, (turn["timeout_s"], elapsed)
    finally:
        await run.stop()


# ---- a restart in the middle of a broadcast, and of a bot's reply ----------------------------------------


class HeldPage(Page):
    """A page whose sends stop returning while `held` is set (a slow reader): a broadcast stalls on it."""

    def __init__(self) -> None:
        super().__init__()
        self.held = False
        self.reached = asyncio.Event()  # a send reached the page (its event is stored) and hangs

    async def send_text(self, data: str) -> None:
        if self.held:
            self.reached.set()
            await asyncio.Event().wait()  # until the process stops
        await super().send_text(data)


class ThreeWay(World):
    async def run(self) -> None:
        for _ in range(2):
            for agent in self.agents:
                said = await agent.act(prompt="Say something.", widget=text_input())
                await self.broadcast(said, exclude=agent)
        await self.save({"lines": 6})


async def test_a_restart_in_the_middle_of_a_broadcast_gives_each_partner_the_line_once(store: Store) -> None:
    task = Task(name="three", title="Three", description="Three people.", world=ThreeWay,
                roles=["Speaker 1", "Speaker 2", "Speaker 3"], timeouts=TIMEOUTS, replayable=True)
    run = await start_run(store, task)
    seats: list[Seat] = []
    try:
        for n in range(3):
            agent, page = await arrive(run, f"w{n}")
            seats.append(Seat(agent, [page]))
            if n < 2:
                await page.wait("state", state="waiting")
        for seat in seats:
            await seat.page.wait("state", state="in_task")
        seats.sort(key=lambda s: run.humans[s.agent_id].role)
        # Speaker 2's page stops reading: the line to it is stored, its send hangs, Speaker 3 is next in line.
        held = HeldPage()
        await run.connect(seats[1].agent_id, held, seats[1].page.last_seq)
        seats[1].pages.append(held)
        held.held = True
        said = await seats[0].answer(run, "to both")
        await asyncio.wait_for(held.reached.wait(), 10)
        assert [e for _, e in await store.events_after(seats[1].agent_id, 0)
                if e.get("message_id") == said["message_id"]]
        await run.stop()  # the process dies in the middle of the broadcast: Speaker 3 never had the line
        assert not [e for _, e in await store.events_after(seats[2].agent_id, 0)
                    if e.get("message_id") == said["message_id"]]
        run = await start_run(store, task)
        for seat in seats:
            await seat.reconnect(run)
        for who, text in [(1, "two"), (2, "three"), (0, "four"), (1, "five"), (2, "six")]:
            await seats[who].answer(run, text)
        await seats[0].page.wait("state", state="done")
    finally:
        await run.stop()
    for seat in seats[1:]:
        assert seat.chat_ids().count(said["message_id"]) == 1
    (conversation,) = await store.conversations("r")
    assert conversation.state == ConversationState.COMPLETED
    assert await store.world_data(conversation.id) == {"lines": 6}
    for seat in seats:
        stream = sorted(set(seat.stream()))
        assert stream == list(range(1, len(stream) + 1))


RELEASE_BOT: dict[str, asyncio.Event] = {}


class SlowBot(MessageBot):
    """Its first reply waits for the test; it counts every time it is asked."""

    async def act(self) -> Message:
        ASKED.append(self.last_text())
        if len(ASKED) == 1:
            RELEASE_BOT["asked"].set()
            await RELEASE_BOT["first"].wait()
        return self.remember(Message(text=f"reply {len(ASKED)}", sender=self.role))


async def test_a_restart_in_the_middle_of_a_bots_reply_asks_the_bot_again_once(store: Store) -> None:
    task = Task(name="slow-bot", title="Slow bot", description="Chat with a slow bot.", world=WithBot,
                roles=["Worker"], bots={"Bot": SlowBot}, timeouts=TIMEOUTS, replayable=True)
    ASKED.clear()
    RELEASE_BOT["first"], RELEASE_BOT["asked"] = asyncio.Event(), asyncio.Event()
    run = await start_run(store, task)
    try:
        agent, page = await arrive(run, "w1")
        seat = Seat(agent, [page])
        await page.wait("state", state="in_task")
        await seat.answer(run, "one")
        await asyncio.wait_for(RELEASE_BOT["asked"].wait(), 10)  # the world handed the turn to the bot
        run = await _restart(run, store, task, [seat])  # the bot's first reply never came
        await seat.page.wait("message", text="reply 2")
        for text in ("two", "three"):
            await seat.answer(run, text)
        await seat.page.wait("state", state="done")
    finally:
        RELEASE_BOT["first"].set()
        await run.stop()
    assert ASKED == ["one", "one", "two", "three"]  # asked again once for the reply the restart cut off
    (conversation,) = await store.conversations("r")
    bot_lines = [m.text for m in await store.messages(conversation.id) if m.sender == "Bot"]
    assert bot_lines == ["reply 2", "reply 3", "reply 4"]  # each reply stored once
