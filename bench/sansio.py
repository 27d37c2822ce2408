"""The cheap client (`--client sansio`, the default): the simulated worker of `bench/worker.py` on websockets'
sans-I/O `ClientProtocol` over a plain asyncio `Protocol` (uvloop's transports in the client processes).

Why: the bench measures servers, so a saturation phase must be bound by the server, not by its clients.
websockets' asyncio client costs a task wake-up, a future and a lock or two per frame, and the worker a
`wait_for` per turn; driving the bare relay at 12,000-14,000 messages a second it kept one client process at
99-100 % of a core, so the relay's figure measured the client. Here frames are parsed as they arrive in
`data_received`, and in the saturation phase a `turn` frame sends the next message from that same callback:
no task, future or timeout per message. Joining (HTTP, `httpx`), pairing, goodbye and submit are the same
as the asyncio worker's, and so are the checks: the ack of every message, exactly-once and in-order
delivery (`seq`), one partner, latency from the sender's `time.monotonic()`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import SEND_EOF, State
from websockets.uri import parse_uri

from bench.worker import HEARTBEAT_S, STATE_TIMEOUT_S, TEXT, TURN_TIMEOUT_S, SimWorker, loads

try:
    import orjson

    def _bytes(frame: dict[str, Any]) -> bytes:
        return orjson.dumps(frame)
except ImportError:  # as bench.worker: slower without orjson, same bytes on the wire
    import json

    def _bytes(frame: dict[str, Any]) -> bytes:
        return json.dumps(frame, separators=(",", ":")).encode()

OPEN_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
PING = b'{"type":"ping"}'
TEXT_FRAMES = (Opcode.TEXT, Opcode.BINARY)


class Connection(asyncio.Protocol):
    """One websocket: bytes in -> websockets' parser -> frames to the worker; the worker's frames -> bytes out."""

    def __init__(self, worker: SansioWorker, url: str) -> None:
        self.worker = worker
        self.ws = ClientProtocol(parse_uri(url), max_size=2**20)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport does not subclass it
        self.ws.send_request(self.ws.connect())
        self._write(self.ws.data_to_send())

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        writes = ws.data_to_send()  # pongs, the close handshake's reply
        if writes:
            self._write(writes)
        events = ws.events_received()
        if not events:
            return
        now = time.monotonic()  # one reading per read: when these frames reached this client
        worker = self.worker
        for event in events:
            if isinstance(event, Frame):
                if event.opcode in TEXT_FRAMES:
                    if not event.fin:
                        worker.errors["fragmented_frame"] += 1
                        continue
                    worker._on_frame(loads(event.data), now)
            elif isinstance(event, Response) and not self.opened.done():
                if ws.handshake_exc is not None:
                    self.opened.set_exception(ws.handshake_exc)
                else:
                    self.opened.set_result(None)

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self._write(self.ws.data_to_send())
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ws.receive_eof()  # idempotent: moves the protocol to CLOSED
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)
        self.worker._on_lost(self.ws.close_code)

    # the worker's side

    @property
    def open(self) -> bool:
        return self.ws.state is State.OPEN

    def send(self, data: bytes) -> bool:
        """Send one text frame; False if the socket is no longer open."""
        try:
            self.ws.send_text(data)
        except InvalidState:
            return False
        self._write(self.ws.data_to_send())
        return True

    async def close(self) -> None:
        """The closing handshake, bounded; then the TCP connection is dropped if the server has not."""
        if self.open:
            self.ws.send_close(1000)
            self._write(self.ws.data_to_send())
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), CLOSE_TIMEOUT_S)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()
            await self.lost

    def _write(self, writes: list[bytes]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data in writes:
            if data == SEND_EOF:
                if transport.can_write_eof():
                    transport.write_eof()
            else:
                transport.write(data)


class SansioWorker(SimWorker):
    """The asyncio worker's behaviour and records, its transport and its turns replaced (see the module)."""

    def __init__(self, *, base: str, run_id: str, worker_id: str) -> None:
        super().__init__(base=base, run_id=run_id, worker_id=worker_id)
        self.conn: Connection | None = None
        self.last_sent = 0.0  # for the heartbeat sweep: a worker that sent anything lately needs no ping
        self._greeted = False  # no ping before the hello: the server wants the hello first (4400 otherwise)
        self._has_turn = False
        self._turn_waiter: asyncio.Future[bool] | None = None
        self._saturating_until: float | None = None  # set: a turn sends the next message at once
        self._owed = 0  # steady: sends whose time came while the worker had no turn (sent on the next turn)
        self._ticks_left = 0
        self._phase_done: asyncio.Future[None] | None = None
        self._phase_count = 0  # steady phases begun and ended: a timer left from an ended one does nothing

    # ---- connecting ----------------------------------------------------------------------------

    async def connect(self, token: str) -> bool:
        host, port = self.base.removeprefix("http://").rsplit(":", 1)
        url = self.base.replace("http://", "ws://") + "/ws"
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Connection(self, url), host, int(port)), OPEN_TIMEOUT_S,
            )
            self.conn = conn
            await asyncio.wait_for(asyncio.shield(conn.opened), OPEN_TIMEOUT_S)
        except Exception as exc:  # OSError, TimeoutError, the handshake's InvalidHandshake: counted by type
            self.errors[f"connect:{type(exc).__name__}"] += 1
            if self.conn is not None and self.conn.transport is not None:
                self._closing = True
                self.conn.transport.abort()
            return False
        self.last_sent = time.monotonic()
        conn.send(self.hello(token).encode())
        self._greeted = True
        return True

    # ---- chatting ------------------------------------------------------------------------------

    def _send(self, *, bye: bool = False) -> bool:
        assert self.conn is not None
        self.sent += 1
        client_id = f"{self.worker_id}.{self.sent}"
        now = time.monotonic()
        if bye:
            self.bye_id = client_id
            data: dict[str, Any] = {"bye": True}
        else:
            data = {"c": client_id, "w": self.worker_id, "t": now}
        self.last_sent = now
        if not self.conn.send(_bytes({"type": "message", "client_id": client_id, "text": TEXT, "data": data})):
            self.errors["send_on_closed_socket"] += 1
            return False
        return True

    def _on_turn(self) -> None:
        until = self._saturating_until
        if until is not None:
            if time.monotonic() < until:
                self._send()
                return
            self._saturating_until = None
            self._has_turn = True
            self._done()
            return
        if self._owed:
            self._owed -= 1
            self._send()
            if not self._owed and not self._ticks_left:
                self._done()
            return
        self._has_turn = True
        if self._turn_waiter is not None and not self._turn_waiter.done():
            self._turn_waiter.set_result(True)

    def _done(self) -> None:
        if self._phase_done is not None and not self._phase_done.done():
            self._phase_done.set_result(None)

    async def _phase(self, timeout: float) -> None:
        assert self._phase_done is not None
        try:
            await asyncio.wait_for(self._phase_done, timeout)
        except TimeoutError:
            self.errors["no_turn"] += 1
        finally:
            self._phase_done = None

    async def say(self, *, bye: bool = False) -> bool:
        if not self._has_turn:
            self._turn_waiter = asyncio.get_running_loop().create_future()
            try:
                if not await asyncio.wait_for(self._turn_waiter, TURN_TIMEOUT_S):
                    return False  # the socket closed (counted there)
            except TimeoutError:
                self.errors["no_turn"] += 1
                return False
            finally:
                self._turn_waiter = None
        self._has_turn = False
        return self._send(bye=bye)

    async def steady(self, start: float, until: float, interval: float, offset: float) -> None:
        """One message every `interval` s from `start + offset` until `until`, each on a timer callback; a
        send whose time comes before the turn is owed and goes out when the turn comes."""
        loop = asyncio.get_running_loop()
        at = start + offset
        ticks = 0
        while at + ticks * interval < until:
            ticks += 1
        if not ticks or self.conn is None or not self.conn.open:
            return
        self._ticks_left = ticks
        self._phase_done = loop.create_future()
        self._phase_count += 1
        phase = self._phase_count

        def tick(due: float) -> None:
            if phase != self._phase_count or self._phase_done is None:
                return  # the phase ended early (closed socket, no turn): its remaining ticks do nothing
            self._ticks_left -= 1
            if self._ticks_left:
                loop.call_later(max(0.0, due + interval - time.monotonic()), tick, due + interval)
            if self.conn is None or not self.conn.open:
                self._done()
                return
            if self._has_turn:
                self._has_turn = False
                self._send()
            else:
                self._owed += 1
            if not self._ticks_left and not self._owed:
                self._done()

        loop.call_later(max(0.0, at - time.monotonic()), tick, at)
        await self._phase(until - time.monotonic() + TURN_TIMEOUT_S)
        self._owed = self._ticks_left = 0
        self._phase_count += 1

    async def saturate(self, until: float) -> None:
        """Closed loop: each turn sends the next message from the frame's callback, until `until`."""
        if self.conn is None or not self.conn.open:
            return
        self._phase_done = asyncio.get_running_loop().create_future()
        self._saturating_until = until
        if self._has_turn:
            self._has_turn = False
            self._send()
        await self._phase(until - time.monotonic() + TURN_TIMEOUT_S)
        self._saturating_until = None

    async def finish(self) -> None:
        if await self.say(bye=True) and await self.wait_state({"done"}, STATE_TIMEOUT_S):
            assert self.conn is not None
            self.conn.send(b'{"type":"submit"}')
            if await self.wait_state({"submitted"}, STATE_TIMEOUT_S):
                self.finished = True
            else:
                self.errors[f"not_submitted:{self.state}"] += 1
        elif self.state != "done":
            self.errors[f"not_done:{self.state}"] += 1
        await self.close()

    async def close(self) -> None:
        self._closing = True
        if self.conn is not None:
            await self.conn.close()

    def _on_lost(self, code: int | None) -> None:
        if not self._closing:
            self.errors[f"socket_closed:{code}"] += 1
            self.state = f"closed:{code}"
            self._state_changed.set()
        if self._turn_waiter is not None and not self._turn_waiter.done():
            self._turn_waiter.set_result(False)
        self._done()

    def ping_if_quiet(self, now: float) -> None:
        if self._greeted and self.conn is not None and self.conn.open and now - self.last_sent >= HEARTBEAT_S:
            self.last_sent = now
            self.conn.send(PING)


async def heartbeats(workers: list[SansioWorker], every_s: float = 2.0) -> None:
    """One sweep for the whole process instead of a task per worker: a ping from each worker that has sent
    nothing for a heartbeat (the server closes a socket silent for three)."""
    while True:
        await asyncio.sleep(every_s)
        now = time.monotonic()
        for worker in workers:
            worker.ping_if_quiet(now)
