"""The echo bot: repeats the last thing someone else said. A stand-in for a model in demos and tests."""

from __future__ import annotations

from worlds.base import Message
from worlds.bots.protocol import MessageBot


class EchoBot(MessageBot):
    def __init__(self, role: str, prefix: str = "You said: ") -> None:
        super().__init__(role)
        self.prefix = prefix

    def act(self) -> Message:
        heard = self.last_text()
        return self.remember(Message(text=f"{self.prefix}{heard}" if heard else "Hello!", sender=self.role))
