"""Agents as worlds see them: HumanAgent over a durable channel, and BotAgent, the adapter for any bot."""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from server import metrics
from server.channel import Channel
from server.protocol import Ack, Say, chat_event, turn_frame
from server.store import DuplicateMessage, MessageRow, Store
from worlds.base import AgentTimeout, Message, TurnEnded, Widget, check_timeout


def new_id() -> str:
    return uuid.uuid4().hex


def message_id() -> str:
    """32 hex digits like `new_id`, led by the time in microseconds: the message table's primary key then
    grows at its end instead of touching a random page of its index for every chat line. Not a secret, so
    the rest comes from `random` (no system call per message)."""
    return f"{time.time_ns() // 1000:014x}{random.getrandbits(72):018x}"


class NotYourTurn(Exception):
    pass


class _TurnExpired(Exception):
    """Set on a turn's future when its time runs out."""


def turn_bound(timeout: float | None, default: float) -> float:
    """The bound of one turn: `timeout`, or the task's `Timeouts.turn` when the world gave none."""
    return check_timeout(default if timeout is None else timeout, "act(timeout=...)")


class HumanAgent:
    """A worker in a world. `act()` opens a turn on the page and waits for the worker's message, for at most
    its timeout (the task's turn timeout by default)."""

    def __init__(self, *, agent_id: str, run_id: str, channel: Channel, store: Store, turn_timeout: float) -> None:
        self.agent_id = agent_id
        self.turn_timeout = turn_timeout
        self.run_id = run_id
        self.role = ""
        self.conversation_id = ""
        self.channel = channel
        self._store = store
        self._turn: asyncio.Future[Message] | None = None
        self._turn_id = ""
        # The client id of the answer being stored for the open turn: a turn takes exactly one answer, so
        # from the moment one is taken (before its write) every other is refused.
        self._answering: tuple[asyncio.Future[Message], str] | None = None
        self._expired: asyncio.Future[Message] | None = None  # ran out of time while its answer was written
        # Set by the conversation: tells the partners whose turn it is (role, timeout), never stored.
        self.on_turn: Callable[[str, float | None], Awaitable[None]] | None = None

    def enter(self, *, role: str, conversation_id: str) -> None:
        self.role = role
        self.conversation_id = conversation_id
        self.end_turn("the agent entered another conversation")

    def end_turn(self, reason: str) -> None:
        """End the open turn, if any, from outside its world: its `act()` raises TurnEnded(reason)."""
        if self._turn is not None and not self._turn.done():
            self._turn.set_exception(TurnEnded(self.role, reason))
        self._turn = None
        self.channel.close_turn(self._turn_id)

    async def observe(self, message: Message) -> None:
        if message.id is not None and message.data.get("_agent_id") == self.agent_id:
            return  # the sender already has its own message in its stream
        await self.channel.emit([_chat_event(message, mine=False)])

    async def act(self, timeout: float | None = None, *, prompt: str = "", widget: Widget | None = None) -> Message:
        timeout = turn_bound(timeout, self.turn_timeout)
        loop = asyncio.get_running_loop()
        self.end_turn("the world opened another turn")
        turn: asyncio.Future[Message] = loop.create_future()
        # Tells one turn from the next on the page, across restarts too (a page ignores a turn whose id it
        # has answered). Not a secret.
        turn_id = f"{random.getrandbits(48):012x}"
        self._turn, self._turn_id = turn, turn_id
        spec = widget.to_dict() if widget is not None else {"kind": "text"}
        timer: asyncio.TimerHandle | None = None
        try:
            await self.channel.open_turn(turn_frame(turn_id=turn_id, prompt=prompt, widget=spec, timeout_s=timeout))
            if self.on_turn is not None:
                await self.on_turn(self.role, timeout)
            # A timer on the turn itself: an answer and the timeout cannot both win.
            timer = loop.call_later(timeout, self._expire, turn)
            return await turn
        except _TurnExpired:
            raise AgentTimeout(self.role) from None
        finally:
            if timer is not None:
                timer.cancel()
            self.channel.close_turn(turn_id)
            if self._turn is turn:
                self._turn = None
            if not turn.done():
                turn.cancel()  # this act itself was cancelled: nobody waits on the turn any more
            elif not turn.cancelled():
                turn.exception()  # expired or ended while this act was being cancelled: retrieved, not logged

    def _expire(self, turn: asyncio.Future[Message]) -> None:
        """The turn's time is up. If its answer is being written, the write decides: stored, the answer
        wins; failed, the turn expires then (see `receive`)."""
        if turn.done():
            return
        if self._answering is not None and self._answering[0] is turn:
            self._expired = turn
            return
        turn.set_exception(_TurnExpired())

    def _release(self, turn: asyncio.Future[Message]) -> None:
        """The claimed answer did not answer `turn`: it is open to another, or expires if its time ran out."""
        if self._answering is not None and self._answering[0] is turn:
            self._answering = None
            if self._expired is turn:
                self._expire(turn)

    async def receive(self, frame: Say) -> None:
        """A message frame from the page: dedup, store with its echo, send the echo (which is its ack), then
        hand it to the world."""
        turn, turn_id = self._turn, self._turn_id
        claim = self._answering if self._answering is not None and self._answering[0] is turn else None
        if turn is None or turn.done() or (claim is not None and claim[1] != frame.client_id):
            # Outside a turn, or once its answer is taken, the only legitimate message is a resend of one
            # already stored: ack it again.
            existing = await self._store.message_for_client_id(self.agent_id, client_id=frame.client_id)
            if existing is not None:
                await self._ack(frame.client_id, existing.id)
                return
            raise NotYourTurn()
        # The check above and this claim have no await between them: two sockets of one agent (two tabs)
        # cannot both answer. A resend of the claimed answer goes on to the write, where the unique
        # (agent, client id) key catches it after the first commits: no read first.
        owner = claim is None
        self._answering = (turn, frame.client_id)
        # The row's column values are built directly: the hot path skips the model's validation.
        row_id = message_id()
        row = {
            "id": row_id, "run_id": self.run_id, "conversation_id": self.conversation_id,
            "agent_id": self.agent_id, "client_id": frame.client_id, "sender": self.role, "kind": "chat",
            "text": frame.text, "data": frame.data, "created_at": time.time(),
        }
        message = Message(
            text=frame.text, sender=self.role, data={**frame.data, "_agent_id": self.agent_id}, id=row_id
        )
        echo = _chat_event(message, mine=True, client_id=frame.client_id)

        stored = False

        async def write(events: Any, on_commit: Callable[[], None]) -> None:
            def committed() -> None:  # under the channel's lock: no socket attached after this sees the turn
                nonlocal stored
                stored = True
                on_commit()
                self.channel.close_turn(turn_id)

            await self._store.add_message(row, events, committed)

        started = time.perf_counter()
        try:
            await self.channel.emit([echo], write=write)
        except DuplicateMessage as dup:
            if owner:  # a message stored before this turn, resent (its ack was lost): not this turn's answer
                self._release(turn)
            # else the same client id raced in on another socket: the claim's owner answers the turn
            await self._ack(frame.client_id, dup.message.id)
            return
        except BaseException:
            if owner and not stored:
                self._release(turn)  # not stored: the turn takes another answer, if it has time left
            raise
        metrics.observe_relay(time.perf_counter() - started)  # receipt -> stored -> echoed (the ack)
        if not turn.done():
            turn.set_result(message)

    async def _ack(self, client_id: str, message_id: str) -> None:
        await self.channel.send_ephemeral(Ack(client_id=client_id, message_id=message_id).model_dump())


def _chat_event(message: Message, *, mine: bool, client_id: str | None = None) -> dict[str, Any]:
    data = {k: v for k, v in message.data.items() if not k.startswith("_")}
    return chat_event(
        message_id=message.id or message_id(), sender=message.sender, text=message.text, kind=message.kind,
        data=data, mine=mine, client_id=client_id,
    )


Typing = Callable[[str, bool], Awaitable[None]]


class BotAgent:
    """Makes any bot an agent: async or sync `observe`/`act`, Parley `Message`s or ParlAI-style dicts.

    A bot whose class sets `accepts_messages = True` gets `Message` objects; any other gets ParlAI dicts
    (`{"text", "id", "episode_done"}`) and may answer with a dict, a `Message` or a plain string. Calls to
    `act` share the run's semaphore, so concurrent model calls stay capped across conversations.

    A synchronous `observe`, `act` or `shutdown` runs on one of the run's bot threads (`threads`, as many as
    `Caps.bot_concurrency`), never on the event loop: a slow bot neither stalls the other conversations nor
    outlives its timeout. Every call is bounded (`act` by its timeout, the others by the turn timeout); a
    thread still busy when its call times out keeps its slot until the bot returns.
    """

    def __init__(
        self,
        bot: Any,
        *,
        role: str,
        run_id: str,
        conversation_id: str,
        store: Store,
        semaphore: asyncio.Semaphore,
        threads: Executor,
        turn_timeout: float,
        typing: Typing | None = None,
    ) -> None:
        self.bot = bot
        self.role = role
        self.run_id = run_id
        self.conversation_id = conversation_id
        self._store = store
        self._semaphore = semaphore
        self._threads = threads
        self.turn_timeout = turn_timeout
        self._typing = typing
        self._native = bool(getattr(bot, "accepts_messages", False))

    async def observe(self, message: Message) -> None:
        observation: Any = message if self._native else _parlai_dict(message)
        await self._call(self.bot.observe, observation, timeout=self.turn_timeout)

    async def act(self, timeout: float | None = None, *, prompt: str = "", widget: Widget | None = None) -> Message:
        timeout = turn_bound(timeout, self.turn_timeout)
        if self._typing is not None:
            await self._typing(self.role, True)
        try:
            async with self._semaphore:
                reply = await self._call(self.bot.act, timeout=timeout)
        finally:
            if self._typing is not None:
                await self._typing(self.role, False)
        message = _as_message(reply, self.role)
        row = MessageRow(
            id=message.id or message_id(),
            run_id=self.run_id,
            conversation_id=self.conversation_id,
            agent_id=None,
            sender=self.role,
            kind=message.kind,
            text=message.text,
            data=message.data,
        )
        message.id = row.id
        await self._store.add_message(row)
        return message

    async def replayed(self, reply: Message) -> None:
        """A replay answered this bot's turn from the record (server/replay.py): the bot is not asked again,
        but its `replayed(reply)`, if it has one, hears what it said, so it keeps its own turn as it did."""
        hook = getattr(self.bot, "replayed", None)
        if callable(hook):
            await self._call(hook, reply if self._native else _parlai_dict(reply), timeout=self.turn_timeout)

    async def shutdown(self) -> None:
        """The bot's own `shutdown()`, if it has one (the conversation ended)."""
        shutdown = getattr(self.bot, "shutdown", None)
        if callable(shutdown):
            await self._call(shutdown, timeout=self.turn_timeout)

    async def _call(self, method: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """`method(*args)` within `timeout`: awaited if async, on a bot thread if not. AgentTimeout if late."""
        try:
            async with asyncio.timeout(timeout):
                if inspect.iscoroutinefunction(method):
                    return await method(*args)
                result = await asyncio.get_running_loop().run_in_executor(self._threads, method, *args)
                return await result if inspect.isawaitable(result) else result
        except TimeoutError:
            raise AgentTimeout(self.role) from None


def _parlai_dict(message: Message) -> dict[str, Any]:
    data = {k: v for k, v in message.data.items() if not k.startswith("_")}
    return {"text": message.text, "id": message.sender, "episode_done": message.episode_done, **data}


def _as_message(reply: Any, role: str) -> Message:
    if isinstance(reply, Message):
        reply.sender = reply.sender or role
        return reply
    if isinstance(reply, str):
        return Message(text=reply, sender=role)
    if isinstance(reply, dict):
        extra = {k: v for k, v in reply.items() if k not in {"text", "id", "episode_done"}}
        return Message(
            text=str(reply.get("text", "")),
            sender=role,
            data={k: jsonable(v) for k, v in extra.items()},
            episode_done=bool(reply.get("episode_done", False)),
        )
    raise TypeError(f"bot {role!r} answered {type(reply).__name__}; expected Message, dict or str")


def jsonable(value: Any) -> Any:
    """`value` if JSON can hold it, else its repr: what a bot or a context source hands over is kept as
    far as it can be stored, never dropped and never a crash."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
