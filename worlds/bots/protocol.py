"""The bot protocol: what a bot must offer to take a role in a Parley world.

A bot is any object with two methods, each either plain or `async`:

    observe(message) -> None        # someone said or showed something
    act() -> reply                  # the bot's turn: return what it says

What `observe` receives depends on the class attribute `accepts_messages`:

- `accepts_messages = True`: a `worlds.base.Message` (text, sender, kind, data, id);
- otherwise a ParlAI-style dict `{"text", "id" (the sender), "episode_done", **data}`, so an existing
  ParlAI agent (`observe(dict)` / `act() -> dict`) takes part unchanged.

`act` may return a `Message`, a ParlAI dict (`{"text": ..., **extra}`; JSON-able extras become `data`) or a
plain string. An optional `shutdown()` (plain or async) is called once when the conversation ends.

After a restart a conversation continues by replaying its record (docs/authoring.md, "Replayable
worlds"): the bot `observe`s every message again, but its recorded replies are not asked of it again.
An optional `replayed(reply)` (plain or async; a `Message` or a ParlAI dict, as `observe` gets) hears
each reply it gave, so a bot that keeps its own turns keeps them. `MessageBot` does this for you.

Parley wraps every bot in an adapter (one per role and conversation) that turns it into a world agent:
it stores each reply before anyone sees it, shows the humans "typing" while the bot acts, bounds `act`
with the world's timeout, and holds the run's semaphore around it so model calls across all
conversations of a run never exceed `Caps.bot_concurrency`.

A task declares its bots as factories, `Task.bots = {"Model": factory}`; the factory is called with the
role name once per conversation. Put expensive model state (weights, an index, a connection pool) at
module level or in the factory's closure, so every conversation of the process shares it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from worlds.base import Message

Reply = Message | dict[str, Any] | str


@runtime_checkable
class Bot(Protocol):
    """Any bot: sync or async `observe` and `act`. See the module docstring for what they exchange."""

    def observe(self, message: Any) -> Awaitable[None] | None: ...

    def act(self) -> Awaitable[Reply] | Reply: ...


BotMaker = Callable[[str], Bot]


class MessageBot:
    """A convenient base for Parley-native bots: keeps the conversation as `history`.

    Subclasses implement `act()` (sync or async) and may call `remember(reply)` to keep their own turn.
    """

    accepts_messages = True

    def __init__(self, role: str) -> None:
        self.role = role
        self.history: list[Message] = []

    def observe(self, message: Message) -> None:
        self.history.append(message)

    def remember(self, reply: Message) -> Message:
        reply.sender = reply.sender or self.role
        self.history.append(reply)
        return reply

    def replayed(self, reply: Message) -> None:
        """A reply this bot gave before a restart, replayed: kept as `act` kept it (an error notice is not,
        see `is_error`). A subclass whose `act` keeps its turns otherwise overrides this to match."""
        if not is_error(reply):
            self.remember(reply)

    def last_text(self) -> str:
        """The text of the last chat or context message someone else sent, or ""."""
        for message in reversed(self.history):
            if message.sender != self.role and message.kind != "system" and message.text:
                return message.text
        return ""

    async def shutdown(self) -> None:
        self.history.clear()


def error_notice(role: str, text: str, *, kind: str, detail: str, **extra: Any) -> Message:
    """The in-chat notice a bot sends when it cannot answer; `data.error` records what went wrong."""
    return Message(
        text=text,
        sender=role,
        kind="system",
        data={"error": {"type": kind, "message": detail, **extra}},
    )


def is_error(message: Message) -> bool:
    """Whether a bot's reply is a failure notice rather than something the model said."""
    return isinstance(message.data.get("error"), dict)
