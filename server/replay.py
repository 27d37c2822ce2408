"""Conversations that survive a restart: a world rebuilt by replaying what it recorded.

After a restart, or when another instance takes a run over, a conversation that was running is not closed
when its task is replayable (`Task.replayable`). Its world is built again with the same context and the same
seed (`World.random`) and run from the beginning, and every step that already happened is answered from
the record instead of happening again:

- an `act()` whose answer is stored (a worker's message, a bot's reply) returns it at once, in that agent's
  order; a bot is not asked again, it hears its own reply through `replayed(reply)` when it has that hook;
- an `observe()` whose event is already in a worker's stream is matched to it and neither stored nor sent
  again; a bot observes again, so it rebuilds its state the way it first built it;
- `save()` is held, and written once when the replay is over.

When every recorded step has been taken the conversation is live again: what the replay held (events for
streams the record had run out of, the last save) is written, and each worker's first open turn counts
down what was left of it when the server stopped (never less than `RESUME_FLOOR_S`, or the turn's own
bound if shorter): their pages, resuming from their last `seq`, see the turn as if nothing had happened.

Determinism is checked, not assumed. A world that asks for an answer in another widget than the recorded
one, shows a worker something other than what the record shows them, ends while recorded steps remain, or
waits on a turn with no recorded answer while recorded steps stay untaken for `STALL_S`, has diverged: the
replay stops with `ReplayDiverged` naming the first difference, nothing is written, and the conversation is
closed the way a restart closes one that cannot continue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from server.agents import BotAgent, HumanAgent, turn_bound
from server.store import Conversation, MessageRow, Store
from worlds.base import Message, MessageKind, Widget

STALL_S = 10.0  # a world waiting for a live turn while the record still holds steps, this long: diverged
RESUME_FLOOR_S = 60.0  # a worker's first turn after a restart never counts down from less than this
EVENTS_BATCH = 2000  # a worker's stream is read this many events at a time

# The key an answer's data carries for each widget kind (docs/protocol.md, "Widgets"); a text answer has none.
_ANSWER_KEY = {"rating": "rating", "choice": "choice", "checkboxes": "checkboxes", "form": "form",
               "fragment": "form"}
ANSWER_KEYS = frozenset(_ANSWER_KEY.values())  # a message carrying one answers a widget; else it is a chat line

Saver = Callable[[dict[str, Any]], Awaitable[None]]


class ReplayDiverged(Exception):
    """The rebuilt world asked for something other than what its record holds."""

    def __init__(self, conversation_id: str, what: str) -> None:
        super().__init__(f"conversation {conversation_id}: the replay diverged from the record: {what}")
        self.what = what


@dataclass
class Record:
    """What a conversation stored before the restart, as the replay consumes it."""

    answers: dict[str, deque[MessageRow]]  # role -> its stored answers (a worker's messages, a bot's replies)
    shown: dict[str, deque[dict[str, Any]]]  # worker's agent id -> the chat events it was shown, in order
    last_at: float  # when the last recorded step happened (the open turns opened about then)

    @classmethod
    async def load(cls, store: Store, conversation: Conversation) -> Record:
        answers: dict[str, deque[MessageRow]] = {}
        last_at = conversation.created_at
        for row in await store.messages(conversation.id):
            answers.setdefault(row.sender, deque()).append(row)
            last_at = max(last_at, row.created_at)
        shown: dict[str, deque[dict[str, Any]]] = {}
        for agent_id in conversation.participants.values():
            if agent_id.startswith("bot:"):
                continue
            events: list[dict[str, Any]] = []
            seq = 0
            while batch := await store.events_after(agent_id, seq, limit=EVENTS_BATCH):
                events += [e for _, e in batch]
                seq = batch[-1][0]
            # The agent's stream holds its onboarding before the conversation: only what follows the move
            # into it belongs to the conversation.
            start = max((i for i, e in enumerate(events) if e.get("type") == "state" and e.get("state") == "in_task"),
                        default=len(events))
            shown[agent_id] = deque(
                e for e in events[start + 1:] if e.get("type") == "message" and not e.get("mine")
            )
        return cls(answers=answers, shown=shown, last_at=last_at)

    def steps_left(self) -> int:
        return sum(map(len, self.answers.values())) + sum(map(len, self.shown.values()))

    def first_left(self) -> str:
        for role, rows in self.answers.items():
            if rows:
                return f"{role}'s answer {rows[0].text[:60]!r}"
        for agent_id, events in self.shown.items():
            if events:
                return f"{events[0].get('sender')}'s message {str(events[0].get('text'))[:60]!r} shown to {agent_id}"
        return "nothing"


class Replay:
    """One conversation's replay: the record, what is held until it is over, and whether it went live."""

    def __init__(self, conversation_id: str, record: Record, *, save: Saver) -> None:
        self.conversation_id = conversation_id
        self.record = record
        self._save = save
        self.stall_s = STALL_S
        self.live = asyncio.Event()
        self.diverged: ReplayDiverged | None = None
        self._held: list[tuple[HumanAgent, Message]] = []
        self._held_save: dict[str, Any] | None = None
        self._progress_at = time.monotonic()
        self._finishing = False
        self._resumed: set[str] = set()  # agents whose first live turn has opened

    def wrap(self, agent: Any) -> Replayed:
        return Replayed(agent, self)

    async def start(self) -> None:
        """Nothing recorded (the restart came right after the pairing): live at once."""
        await self._maybe_live()

    # ---- what a world does, answered from the record while it lasts ----------------------------------

    async def act(self, agent: Any, timeout: float | None, *, prompt: str, widget: Widget | None) -> Message:
        self._check()
        if not self.live.is_set():
            rows = self.record.answers.get(agent.role)
            if rows:
                row = rows.popleft()
                self._check_widget(agent.role, row, widget)
                message = _message_of(row)
                if isinstance(agent, BotAgent):
                    await agent.replayed(message)
                self._took_step()
                await self._maybe_live()
                return message
            await self._wait_live(agent.role)
        if isinstance(agent, HumanAgent) and agent.agent_id not in self._resumed:
            self._resumed.add(agent.agent_id)
            timeout = self._time_left(turn_bound(timeout, agent.turn_timeout))
        result: Message = await agent.act(timeout, prompt=prompt, widget=widget)
        return result

    async def observe(self, agent: Any, message: Message) -> None:
        self._check()
        if self.live.is_set() or not isinstance(agent, HumanAgent):
            await agent.observe(message)  # a bot observes again: it rebuilds its state as it first did
            return
        if message.id is not None and message.data.get("_agent_id") == agent.agent_id:
            return  # its own message: already in its stream as its echo
        shown = self.record.shown.get(agent.agent_id)
        if shown:
            event = shown.popleft()
            if not _same(event, message):
                self._diverge(
                    f"{agent.role} is shown {message.sender}'s {message.text[:60]!r} where the record shows "
                    f"{event.get('sender')}'s {str(event.get('text'))[:60]!r}"
                )
            self._took_step()
            await self._maybe_live()
            return
        self._held.append((agent, message))  # new to this worker: sent once the replay is over

    async def save(self, data: dict[str, Any]) -> None:
        self._check()
        if self.live.is_set():
            await self._save(data)
        else:
            self._held_save = data

    def world_ended(self) -> None:
        """The world returned: if recorded steps remain, it did not do what it did before."""
        self._check()
        if not self.live.is_set():
            self._diverge(f"the world ended with {self.record.steps_left()} recorded steps left, first "
                          f"{self.record.first_left()}")

    # ---- the replay's own course ----------------------------------------------------------------------

    def _took_step(self) -> None:
        self._progress_at = time.monotonic()

    async def _maybe_live(self) -> None:
        if self.live.is_set() or self._finishing or self.record.steps_left():
            return
        self._finishing = True
        while self._held:  # observations made while finishing join the queue
            agent, message = self._held.pop(0)
            await agent.observe(message)
        if self._held_save is not None:
            await self._save(self._held_save)
            self._held_save = None
        self.live.set()

    async def _wait_live(self, role: str) -> None:
        """A turn with no recorded answer while the replay lasts: another agent's recorded steps come first
        (worlds that ask several agents at once). It waits for them, unless nothing moves for `stall_s`."""
        while not self.live.is_set():
            left = self.stall_s - (time.monotonic() - self._progress_at)
            if left <= 0:
                self._diverge(f"the world waits for {role}'s turn, which the record never reached, while "
                              f"{self.record.steps_left()} recorded steps remain, first {self.record.first_left()}")
            try:
                async with asyncio.timeout(left):
                    await self.live.wait()
            except TimeoutError:
                pass
        self._check()

    def _time_left(self, bound: float) -> float:
        """A worker's first turn after the restart: what was left of it, counted from the last recorded step
        (the time the server was down included), but never less than a fair floor."""
        left = bound - (time.time() - self.record.last_at)
        return max(left, min(bound, RESUME_FLOOR_S))

    def _check_widget(self, role: str, row: MessageRow, widget: Widget | None) -> None:
        if row.agent_id is None:
            return  # a bot's reply: bots answer in messages, not widgets
        kind = widget.kind if widget is not None else "text"
        answered = ANSWER_KEYS & row.data.keys()
        expected = _ANSWER_KEY.get(kind)
        if (expected is None and answered) or (expected is not None and expected not in answered):
            self._diverge(f"{role} is asked for a {kind} answer where the record holds "
                          f"{', '.join(sorted(answered)) or 'a text'} answer {row.text[:60]!r}")

    def _diverge(self, what: str) -> None:
        self.diverged = ReplayDiverged(self.conversation_id, what)
        self.live.set()  # wakes every turn waiting for the replay to end: they raise
        raise self.diverged

    def _check(self) -> None:
        if self.diverged is not None:
            raise self.diverged


class Replayed:
    """An agent as a replayed world sees it: `observe` and `act` go through the replay, the rest is the
    agent's own."""

    def __init__(self, agent: Any, replay: Replay) -> None:
        self.agent = agent
        self.role: str = agent.role
        self._replay = replay

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)

    async def observe(self, message: Message) -> None:
        await self._replay.observe(self.agent, message)

    async def act(self, timeout: float | None = None, *, prompt: str = "", widget: Widget | None = None) -> Message:
        return await self._replay.act(self.agent, timeout, prompt=prompt, widget=widget)


def _message_of(row: MessageRow) -> Message:
    """The recorded answer as the world first received it."""
    data = dict(row.data)
    if row.agent_id is not None:
        data["_agent_id"] = row.agent_id  # as HumanAgent.receive marks it: its sender is not shown it again
    return Message(text=row.text, sender=row.sender, kind=cast(MessageKind, row.kind), data=data, id=row.id)


def _same(event: dict[str, Any], message: Message) -> bool:
    if message.id is not None:
        return bool(event.get("message_id") == message.id)
    data = {k: v for k, v in message.data.items() if not k.startswith("_")}
    return (event.get("sender"), event.get("text"), event.get("kind"), event.get("data")) == (
        message.sender, message.text, message.kind, data
    )
