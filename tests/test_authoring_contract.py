"""What a task author relies on (docs/authoring.md), checked against a real Run and store, no FastAPI:
every turn is bounded (by the task's turn timeout when the world gives none), a worker who does not
submit is let go after the submission bound, a slow synchronous bot neither blocks other conversations nor
outlives its timeout, and a turn Parley ends raises TurnEnded in the world."""

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.protocol import JoinRequest, Say
from server.runner import Run
from server.states import AgentState
from server.store import Store
from server.tokens import TokenSigner
from tests.test_runner import Page
from worlds.base import Caps, Task, Timeouts, TurnEnded, World

BOUND_S = 30.0  # how long a test waits for something that should happen in well under a second or two


class OneTurnWithoutTimeout(World):
    """Asks its worker once, giving no timeout: the task's Timeouts.turn must bound the turn."""

    async def run(self) -> None:
        reply = await self.agents[0].act(prompt="Say anything.")
        await self.save({"said": reply.text})


def _task(world: type[World], **kw: Any) -> Task:
    kw.setdefault("timeouts", Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=60.0))
    kw.setdefault("roles", ["Worker"])
    return Task(name="contract", title="Contract", description="A contract test.", world=world, **kw)


async def _run(store: Store, task: Task) -> Run:
    row = await store.ensure_run("r", task_module="tests.test_authoring_contract", options={})
    run = Run(row, task, store=store, signer=TokenSigner("k", 60), heartbeat_s=5)
    await run.start()
    return run


@pytest.fixture
async def runs(store: Store) -> AsyncIterator[list[Run]]:
    started: list[Run] = []
    try:
        yield started
    finally:
        for run in started:
            await run.stop()


async def _arrive(run: Run, worker: str) -> tuple[str, Page]:
    agent = (await run.join(JoinRequest(assignment_id=f"A-{worker}", worker_id=worker))).agent
    page = Page()
    await run.connect(agent.id, page, 0)
    return agent.id, page


async def _wait(page: Page, kind: str, **match: Any) -> dict[str, Any]:
    return await asyncio.wait_for(page.wait(kind, **match), BOUND_S)


async def test_a_turn_without_a_timeout_ends_at_the_tasks_turn_timeout(store: Store, runs: list[Run]) -> None:
    timeouts = Timeouts(turn=0.5, waiting=60.0, onboarding=60.0, reconnect_grace=60.0)
    run = await _run(store, _task(OneTurnWithoutTimeout, timeouts=timeouts))
    runs.append(run)
    agent_id, page = await _arrive(run, "w1")
    turn = await _wait(page, "turn")
    assert turn["timeout_s"] == 0.5  # the page shows the bound too
    timed_out = await _wait(page, "state", state="timed_out")
    assert "did not answer in time" in timed_out["text"]
    row = await store.get_agent(agent_id)
    assert row is not None and row.state == AgentState.TIMED_OUT


def test_a_timeout_that_is_not_a_bound_is_refused() -> None:
    for bad in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="every wait needs a bound"):
            Timeouts(turn=bad)
        with pytest.raises(ValueError, match="every wait needs a bound"):
            Timeouts(submission=bad)


class UnboundedTurn(World):
    async def run(self) -> None:
        await self.agents[0].act(timeout=math.inf, prompt="Say anything.")


async def test_a_world_asking_for_an_endless_turn_ends_its_conversation_with_a_way_to_submit(
    store: Store, runs: list[Run]
) -> None:
    run = await _run(store, _task(UnboundedTurn))
    runs.append(run)
    _, page = await _arrive(run, "w1")
    closed = await _wait(page, "state", state="closed")
    assert closed["can_submit"] is True
    [conv] = await store.conversations("r")
    assert conv.state == "failed" and "every wait needs a bound" in conv.end_reason


class SayOnce(World):
    async def run(self) -> None:
        await self.agents[0].act(prompt="Say anything.")


async def test_a_worker_who_does_not_submit_in_time_expires_and_is_told_why(store: Store, runs: list[Run]) -> None:
    timeouts = Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=60.0, submission=0.5)
    run = await _run(store, _task(SayOnce, timeouts=timeouts))
    runs.append(run)
    agent_id, page = await _arrive(run, "w1")
    await _wait(page, "turn")
    await run.receive(agent_id, Say(type="message", client_id="c1", text="hello"))
    done = await _wait(page, "state", state="done")
    assert done["can_submit"] is True
    expired = await _wait(page, "state", state="expired")
    assert expired["can_submit"] is False
    assert "time to submit ran out" in expired["text"] and "return" in expired["text"]
    row = await store.get_agent(agent_id)
    assert row is not None and row.state == AgentState.EXPIRED


async def test_a_worker_who_submits_in_time_is_not_expired(store: Store, runs: list[Run]) -> None:
    timeouts = Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=60.0, submission=0.3)
    run = await _run(store, _task(SayOnce, timeouts=timeouts))
    runs.append(run)
    agent_id, page = await _arrive(run, "w1")
    await _wait(page, "turn")
    await run.receive(agent_id, Say(type="message", client_id="c1", text="hello"))
    await _wait(page, "state", state="done")
    await run.submit(agent_id)
    await asyncio.sleep(0.6)  # past the submission bound: its timer was cancelled by the submission
    row = await store.get_agent(agent_id)
    assert row is not None and row.state == AgentState.SUBMITTED


class SleepyBot:
    """A ParlAI-style synchronous bot whose act() blocks for `SLEEP_S` when the worker says "sleep"."""

    SLEEP_S = 6.0
    started = threading.Event()
    started_at = 0.0

    def __init__(self, role: str) -> None:
        self.last = ""

    def observe(self, observation: dict[str, Any]) -> None:
        self.last = observation["text"]

    def act(self) -> str:
        if self.last == "sleep":
            SleepyBot.started_at = time.monotonic()
            SleepyBot.started.set()
            time.sleep(self.SLEEP_S)
        return f"you said {self.last}"


class TalkToTheBot(World):
    async def run(self) -> None:
        worker, bot = self.agent("Worker"), self.agent("Bot")
        while True:
            line = await worker.act(prompt="Say something to the bot.")
            await bot.observe(line)
            reply = await bot.act(timeout=1.0)
            await worker.observe(reply)


async def test_a_slow_synchronous_bot_times_out_without_holding_up_other_conversations(
    store: Store, runs: list[Run]
) -> None:
    SleepyBot.started.clear()
    task = _task(TalkToTheBot, bots={"Bot": SleepyBot}, caps=Caps(max_conversations=5))
    run = await _run(store, task)
    runs.append(run)
    sleeper, sleeper_page = await _arrive(run, "w1")
    other, other_page = await _arrive(run, "w2")
    await _wait(sleeper_page, "turn")
    await _wait(other_page, "turn")

    await run.receive(sleeper, Say(type="message", client_id="s1", text="sleep"))
    assert await asyncio.to_thread(SleepyBot.started.wait, BOUND_S), "the bot never started its slow act()"
    # The other conversation's line, while the bot sleeps: stored and acked (its echo) without waiting on it.
    await run.receive(other, Say(type="message", client_id="o1", text="hello"))
    await _wait(other_page, "message", client_id="o1")
    reply = await _wait(other_page, "message", sender="Bot")
    assert reply["text"] == "you said hello"
    answered = time.monotonic()
    assert answered - SleepyBot.started_at < SleepyBot.SLEEP_S / 2, "the sleeping bot held up the event loop"

    # The sleeping bot's own turn ends at its timeout (1 s), not when it wakes.
    closed = await _wait(sleeper_page, "state", state="closed")
    assert time.monotonic() - SleepyBot.started_at < SleepyBot.SLEEP_S
    assert closed["can_submit"] is True
    row = await store.get_agent(sleeper)
    assert row is not None and row.state == AgentState.CLOSED
    conv = next(c for c in await store.conversations("r") if c.participants["Worker"] == sleeper)
    assert conv.state == "failed" and conv.end_reason == "Bot did not act in time"


class TurnHolder(World):
    """Records what its open turn raised."""

    raised: list[BaseException] = []

    async def run(self) -> None:
        try:
            await self.agents[0].act(prompt="Say anything.")
        except BaseException as exc:
            TurnHolder.raised.append(exc)
            raise


async def test_a_turn_parley_ends_raises_turn_ended_in_the_world_and_the_worker_can_submit(
    store: Store, runs: list[Run]
) -> None:
    TurnHolder.raised.clear()
    run = await _run(store, _task(TurnHolder))
    runs.append(run)
    agent_id, page = await _arrive(run, "w1")
    await _wait(page, "turn")
    run.humans[agent_id].end_turn("a test ended it")
    closed = await _wait(page, "state", state="closed")
    assert closed["can_submit"] is True
    [raised] = TurnHolder.raised
    assert isinstance(raised, TurnEnded) and raised.reason == "a test ended it"
    [conv] = await store.conversations("r")
    assert conv.state == "failed" and "a test ended it" in conv.end_reason


class Counting(World):
    turns_each = 3
    greeting = "hello"


def test_world_options_are_set_on_each_world_the_task_builds() -> None:
    task = _task(Counting, world_options={"turns_each": 1, "greeting": "hi"})
    world = task.build_world([], None)
    assert isinstance(world, Counting) and (world.turns_each, world.greeting) == (1, "hi")
    assert Counting.turns_each == 3  # the class itself is untouched: another task may use it with others


def test_a_world_option_the_world_does_not_declare_is_refused_naming_what_it_declares() -> None:
    with pytest.raises(ValueError, match=r"'turn_each'.*declares: greeting, turns_each"):
        _task(Counting, world_options={"turn_each": 1})
    with pytest.raises(ValueError, match="'run'"):
        _task(Counting, world_options={"run": None})  # a method is not an option
