"""HumanAgent's turn: an answer or the turn's timeout, never both. No FastAPI here."""

import asyncio
import json
from typing import Any

import pytest

from server.agents import HumanAgent, NotYourTurn
from server.channel import Channel
from server.protocol import Say
from server.states import AgentState
from server.store import AgentRow, Store
from worlds.base import AgentTimeout, Message, TurnEnded


class Page:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))
        self.arrived.set()

    async def close(self, code: int, reason: str) -> None:
        pass

    async def first(self, kind: str) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for frame in self.sent:
                    if frame["type"] == kind:
                        return frame
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), 5)


@pytest.fixture
async def agent(store: Store) -> HumanAgent:
    await store.ensure_run("r", task_module="m", options={})
    await store.create_agent(AgentRow(id="g", run_id="r", worker_id="w", assignment_id="a", state=AgentState.JOINED))
    channel = await Channel.load("g", store)
    await channel.attach(Page(), 0, {"type": "welcome"})
    human = HumanAgent(agent_id="g", run_id="r", channel=channel, store=store, turn_timeout=60.0)
    human.enter(role="A", conversation_id="c1")
    return human


def _say(client_id: str) -> Say:
    return Say(type="message", client_id=client_id, text="hello")


async def _answer_a_turn(agent: HumanAgent, *, timeout: float) -> tuple[Page, Message]:
    """Open a turn on a freshly attached page and answer it as the page would; the turn's message."""
    page = Page()
    await agent.channel.attach(page, 0, {"type": "welcome"})
    turn = asyncio.create_task(agent.act(timeout=timeout))
    await page.first("turn")
    await agent.receive(_say("c-1"))
    return page, await asyncio.wait_for(turn, 5)


async def test_a_turn_that_runs_out_of_time_times_out_and_refuses_a_late_answer(
    agent: HumanAgent, store: Store
) -> None:
    with pytest.raises(AgentTimeout):
        await agent.act(timeout=0.05)
    with pytest.raises(NotYourTurn):
        await agent.receive(_say("late"))
    assert await store.message_for_client_id("g", client_id="late") is None  # the late answer was not stored


async def test_an_answer_in_time_wins_and_its_timer_never_fires(agent: HumanAgent, store: Store) -> None:
    _, message = await _answer_a_turn(agent, timeout=0.2)
    assert message.text == "hello"
    await asyncio.sleep(0.3)  # past the turn's timeout: its timer was cancelled with the answer
    assert await store.message_for_client_id("g", client_id="c-1") is not None
    with pytest.raises(NotYourTurn):  # and no turn is open any more
        await agent.receive(_say("c-2"))


async def test_the_stored_event_is_the_frame_that_was_sent(agent: HumanAgent, store: Store) -> None:
    page, _ = await _answer_a_turn(agent, timeout=5)
    echo = await page.first("message")
    [(seq, stored)] = await store.events_after("g", 0)
    assert echo["seq"] == seq == 1
    assert stored == echo  # serialized once: the stored payload carries its seq, as sent


async def test_a_second_answer_to_one_turn_is_refused_and_not_stored(agent: HumanAgent, store: Store) -> None:
    """Two sockets of one agent (two tabs) answer the same turn at the same moment: one answer is taken."""
    page = Page()
    await agent.channel.attach(page, 0, {"type": "welcome"})
    turn = asyncio.create_task(agent.act(timeout=5))
    await page.first("turn")
    answers = await asyncio.gather(*(agent.receive(_say(f"tab-{i}")) for i in range(5)), return_exceptions=True)
    message = await asyncio.wait_for(turn, 5)
    assert sum(1 for a in answers if isinstance(a, NotYourTurn)) == 4
    stored = [m for m in await store.messages("c1") if m.agent_id == "g"]
    assert len(stored) == 1 and stored[0].id == message.id


async def test_a_resend_of_the_answer_being_stored_is_acked_once_not_refused(agent: HumanAgent, store: Store) -> None:
    page = Page()
    await agent.channel.attach(page, 0, {"type": "welcome"})
    turn = asyncio.create_task(agent.act(timeout=5))
    await page.first("turn")
    await asyncio.gather(agent.receive(_say("same")), agent.receive(_say("same")))
    message = await asyncio.wait_for(turn, 5)
    assert [m.id for m in await store.messages("c1")] == [message.id]
    ack = await page.first("ack")
    assert ack["message_id"] == message.id


async def test_an_answer_being_stored_when_the_turn_runs_out_wins(
    agent: HumanAgent, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's timer fires while its answer is being written: the stored answer is the turn's result,
    never a timeout on top of a stored, acked message."""
    writing, release = asyncio.Event(), asyncio.Event()
    add_message = store.add_message

    async def slow_add_message(*args: Any, **kwargs: Any) -> None:
        writing.set()
        await release.wait()
        await add_message(*args, **kwargs)

    monkeypatch.setattr(store, "add_message", slow_add_message)
    page = Page()
    await agent.channel.attach(page, 0, {"type": "welcome"})
    turn = asyncio.create_task(agent.act(timeout=0.2))
    await page.first("turn")
    answer = asyncio.create_task(agent.receive(_say("just-in-time")))
    await asyncio.wait_for(writing.wait(), 5)
    await asyncio.sleep(0.3)  # past the turn's timeout, with the answer's write still in flight
    release.set()
    await asyncio.wait_for(answer, 5)
    message = await asyncio.wait_for(turn, 5)
    assert message.text == "hello"
    assert [m.id for m in await store.messages("c1")] == [message.id]


async def test_a_resend_of_an_earlier_turns_message_leaves_the_open_turn_to_its_answer(
    agent: HumanAgent, store: Store
) -> None:
    """A page resends a message stored in an earlier turn (its echo was lost in a drop), then answers the
    open turn: the resend is acked, and the answer is the turn's."""
    await _answer_a_turn(agent, timeout=5)  # stores "c-1"
    page = Page()
    await agent.channel.attach(page, 1, {"type": "welcome"})
    turn = asyncio.create_task(agent.act(timeout=5))
    await page.first("turn")
    await agent.receive(_say("c-1"))
    assert (await page.first("ack"))["client_id"] == "c-1"
    await agent.receive(Say(type="message", client_id="c-2", text="the answer"))
    assert (await asyncio.wait_for(turn, 5)).text == "the answer"


async def test_an_act_without_a_timeout_is_bounded_by_the_turn_timeout(agent: HumanAgent) -> None:
    agent.turn_timeout = 0.05
    page = Page()
    await agent.channel.attach(page, 0, {"type": "welcome"})
    with pytest.raises(AgentTimeout):
        await asyncio.wait_for(agent.act(), 5)
    assert (await page.first("turn"))["timeout_s"] == 0.05


async def test_an_ended_turn_raises_turn_ended_with_its_reason(agent: HumanAgent) -> None:
    page = Page()
    await agent.channel.attach(page, 0, {"type": "welcome"})
    turn = asyncio.create_task(agent.act(timeout=5))
    await page.first("turn")
    agent.end_turn("the conversation ended")
    with pytest.raises(TurnEnded, match="the conversation ended"):
        await asyncio.wait_for(turn, 5)
