"""The delivery layer's interface (`Delivery`, its messages) and its in-process backend (`LocalDelivery`);
server/delivery/__init__.py describes the layer and chooses the backend."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Message = dict[str, Any]
OnMessage = Callable[[Message], None]


class Unreachable(Exception):
    """The instance addressed has no inbox (it is gone)."""


class Delivery(Protocol):
    instance_id: str
    # Whether another instance can be reached at all (False: the one-process backend).
    shared: bool

    async def start(
        self, on_message: OnMessage, *, on_reset: Callable[[], None], on_unreachable: Callable[[str], None],
    ) -> None:
        """Open this instance's inbox. `on_message` is called for each message, in order, and must not
        block; `on_reset` when messages may have been lost; `on_unreachable(instance)` when a message
        found no inbox at `instance`."""
        ...

    def send(self, to: str, message: Message) -> None:
        """Queue `message` for the inbox of instance `to`. Never blocks."""
        ...

    async def aclose(self) -> None: ...


class LocalDelivery:
    """Inboxes in this process. Instances made in one process with one `hub` reach each other (tests)."""

    shared = False
    _hubs: dict[str, dict[str, LocalDelivery]] = {}

    def __init__(self, instance_id: str, hub: str = "") -> None:
        self.instance_id = instance_id
        self._hub = self._hubs.setdefault(hub, {})
        self._on_message: OnMessage | None = None
        self._on_unreachable: Callable[[str], None] = lambda _i: None

    async def start(
        self, on_message: OnMessage, *, on_reset: Callable[[], None], on_unreachable: Callable[[str], None],
    ) -> None:
        self._on_message = on_message
        self._on_unreachable = on_unreachable
        self._hub[self.instance_id] = self

    def send(self, to: str, message: Message) -> None:
        peer = self._hub.get(to)
        if peer is None or peer._on_message is None:
            asyncio.get_running_loop().call_soon(self._on_unreachable, to)
            return
        asyncio.get_running_loop().call_soon(peer._on_message, message)

    async def aclose(self) -> None:
        if self._hub.get(self.instance_id) is self:
            del self._hub[self.instance_id]
        self._on_message = None
