"""One channel per agent: an ordered, durable outbound stream, and the socket currently attached to it.

Every sequenced event is stored before it is sent. Sequence numbers are gap-free per agent: a number is
only taken once its event is committed. An event is serialized once: the frame sent (its payload with its
`seq`) is the JSON text stored. Attaching a socket replays what the page has not seen, under the
same lock that live sends take, so a page never sees a gap, a duplicate or an out-of-order event.

The open turn is state, not history: the channel holds it (never stored) and sends it after the replay
of every socket attached while it is open. A restart ends the world that opened it, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from server.close_codes import CloseCode
from server.stall import StallGuard
from server.store import Store
from server.store.group_commit import Event, JsonText

log = logging.getLogger(__name__)

# A stream write: store these events (with whatever else belongs with them) and call the callback the
# moment they are committed. It returns once committed; if its caller is cancelled meanwhile, it raises
# CancelledError only once the write's fate is known (the store's group commit works this way).
Writer = Callable[[Sequence[Event], Callable[[], None]], Awaitable[Any]]

SEND_TIMEOUT_S = 10.0


class Disconnected(Exception):
    """The socket is gone. The one exception transport failures are translated into."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"socket closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class Socket(Protocol):
    """What a channel needs from a connection. The websocket route adapts Starlette's WebSocket to it."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib is the fallback
    orjson = None  # type: ignore[assignment]


def dumps(frame: dict[str, Any]) -> str:
    """A frame as compact JSON text. orjson when present: the hot path serializes every frame sent."""
    if orjson is not None:
        return str(orjson.dumps(frame).decode())
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


class Channel:
    def __init__(self, agent_id: str, store: Store, head_seq: int) -> None:
        self.agent_id = agent_id
        self.head_seq = head_seq
        self._store = store
        self._lock = asyncio.Lock()
        self._socket: Socket | None = None
        # The socket that was (or was being made) the live one when it was lost, with no newer one since: a
        # send to it failed, or its attach did. Its reader's close is still that page leaving (`detach`).
        self._dropped: Socket | None = None
        self._stuck = StallGuard(SEND_TIMEOUT_S)  # a send that has not returned in this long: drop the socket
        self._turn: dict[str, Any] | None = None  # the open turn's frame
        self._turn_deadline: float | None = None  # loop time at which it times out

    @classmethod
    async def load(cls, agent_id: str, store: Store) -> Channel:
        return cls(agent_id, store, await store.head_seq(agent_id))

    @property
    def attached(self) -> bool:
        return self._socket is not None

    def is_attached(self, socket: Socket) -> bool:
        """`socket` is the live one: a socket replaced by a newer one no longer acts for the agent."""
        return self._socket is socket

    async def emit(
        self,
        payloads: Sequence[dict[str, Any]],
        *,
        write: Writer | None = None,
    ) -> list[int]:
        """Store `payloads` as this agent's next events (with `write`, together with other rows), then send."""
        async with self._lock:
            first = self.head_seq + 1
            last = first + len(payloads) - 1
            seqs = range(first, last + 1)
            frames = [dumps({**payload, "seq": seq}) for seq, payload in zip(seqs, payloads, strict=True)]
            events: list[Event] = [(self.agent_id, seq, JsonText(f)) for seq, f in zip(seqs, frames, strict=True)]

            def committed() -> None:  # also when this caller is cancelled after the commit
                self.head_seq = max(self.head_seq, last)

            await (write or self._store.append_events)(events, committed)
            committed()  # the write returned: it is committed (a writer need not call back on success)
            await self._send(*frames)
            return list(seqs)

    async def open_turn(self, frame: dict[str, Any]) -> None:
        """The agent's turn (a turn frame): sent now if a socket is attached, and on every later attach
        until `close_turn`. Its `timeout_s` is re-counted from now on each of those."""
        timeout = frame.get("timeout_s")
        async with self._lock:
            self._turn = frame
            self._turn_deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            await self._send(dumps(frame))

    def close_turn(self, turn_id: str) -> None:
        """The turn `turn_id` is over (answered, timed out, cancelled): later attaches no longer send it."""
        if self._turn is not None and self._turn["turn_id"] == turn_id:
            self._turn = self._turn_deadline = None

    def _open_turn_frame(self) -> dict[str, Any] | None:
        if self._turn is None or self._turn_deadline is None:
            return self._turn
        left = max(0.0, self._turn_deadline - asyncio.get_running_loop().time())
        return {**self._turn, "timeout_s": round(left, 3)}

    async def send_ephemeral(self, frame: dict[str, Any]) -> None:
        """A frame outside the stream (ack, error, pong, typing): sent if a socket is attached, never stored."""
        async with self._lock:
            await self._send(dumps(frame))

    async def attach(self, socket: Socket, last_seq: int, welcome: dict[str, Any]) -> None:
        """Make `socket` the live one: send `welcome`, replay events after `last_seq`, then go live."""
        async with self._lock:
            previous, self._socket, self._dropped = self._socket, None, socket
            if previous is not None and previous is not socket:
                replaced = "Replaced by a newer connection for this assignment."
                await _close_quietly(previous, CloseCode.REPLACED, replaced)
            if last_seq > self.head_seq:
                await socket.send_text(dumps({
                    "type": "error",
                    "code": "bad_resume",
                    "message": f"last_seq {last_seq} is ahead of this stream ({self.head_seq}); reload the page.",
                }))
                await _close_quietly(socket, CloseCode.BAD_FRAME, "bad_resume")
                raise Disconnected(CloseCode.BAD_FRAME, "resume ahead of stream")
            await socket.send_text(dumps({**welcome, "head_seq": self.head_seq}))
            seq = last_seq
            while seq < self.head_seq:
                batch = await self._store.events_after(self.agent_id, seq, limit=500)
                if not batch:
                    break
                for seq, payload in batch:
                    async with asyncio.timeout(SEND_TIMEOUT_S):
                        await socket.send_text(dumps({**payload, "seq": seq}))
            turn = self._open_turn_frame()
            if turn is not None:
                # asyncio.timeout, not wait_for: no task per send, and a failed send leaves no reference
                # cycle (task -> exception -> traceback -> task) for the collector to find later.
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await socket.send_text(dumps(turn))
            self._socket, self._dropped = socket, None

    async def detach(self, socket: Socket) -> bool:
        """Forget `socket` if it is the attached one, or was until it was lost (a send to it failed first):
        True then, and the page has gone. False for a socket a newer one replaced."""
        async with self._lock:
            if self._socket is socket or (self._socket is None and self._dropped is socket):
                self._socket = self._dropped = None
                return True
            return False

    async def close(self, code: int, reason: str) -> None:
        self._stuck.close()
        async with self._lock:
            socket, self._socket, self._dropped = self._socket, None, None
        if socket is not None:
            await _close_quietly(socket, code, reason)

    async def _send(self, *frames: str) -> None:
        socket = self._socket
        if socket is None:
            return  # the page catches up from the store when it reconnects
        self._stuck.start()
        try:
            for frame in frames:
                await socket.send_text(frame)
            return
        except Disconnected:
            pass  # the peer is gone
        except asyncio.CancelledError:
            if not self._stuck.expired():
                raise
            # the send has not returned in SEND_TIMEOUT_S: the peer stopped reading
        finally:
            self._stuck.stop()
        # A dead or stuck socket: drop it; its reader sees the close (`detach`) and the page resumes later.
        self._socket, self._dropped = None, socket
        await _close_quietly(socket, CloseCode.SERVER_ERROR, "send failed")


async def _close_quietly(socket: Socket, code: int, reason: str) -> None:
    try:
        async with asyncio.timeout(5.0):
            await socket.close(code, reason)
    except (Disconnected, TimeoutError):
        pass
