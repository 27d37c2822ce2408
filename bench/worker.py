"""One simulated worker on websockets' asyncio client (`--client asyncio`), going the real way: HTTP join
with MTurk's parameters, websocket hello, waiting room, pairing, chatting when the world gives it a turn,
goodbye, submit. `bench/sansio.py` is the same worker on a cheaper transport (the default).

It keeps what the report needs and nothing else: the client ids the server acked, the partner messages it
received (by client id, to check exactly-once), (sent, received) times for relay latency, and errors by
code. Times are `time.monotonic()`, one clock for every process on the machine (CLOCK_MONOTONIC), so a
sender's timestamp can be compared with the receiver's in another client process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from server.protocol import PROTOCOL_VERSION

try:
    import orjson

    def loads(raw: str | bytes) -> Any:
        return orjson.loads(raw)

    def dumps(frame: dict[str, Any]) -> str:
        return orjson.dumps(frame).decode()
except ImportError:  # the bench runs without orjson too, only a little slower on the client side
    import json

    def loads(raw: str | bytes) -> Any:
        return json.loads(raw)

    def dumps(frame: dict[str, Any]) -> str:
        return json.dumps(frame, separators=(",", ":"))


TEXT = "Hi! I'd go to the park by the river, and you? What's your favourite place?"
PAIR_TIMEOUT_S = 120.0
TURN_TIMEOUT_S = 30.0
STATE_TIMEOUT_S = 60.0
HEARTBEAT_S = 10.0


class SimWorker:
    def __init__(self, *, base: str, run_id: str, worker_id: str) -> None:
        self.base = base
        self.run_id = run_id
        self.worker_id = worker_id
        self.assignment_id = f"A{worker_id}"
        self.instance = 0  # which of several instances it joins (always 0 with one)
        self.ws: ClientConnection | None = None
        self.last_seq = 0
        self.state = ""
        self.sent = 0
        self.acked: list[str] = []
        self.got: Counter[str] = Counter()
        self.senders: set[str] = set()
        self.latencies: list[tuple[float, float]] = []  # (sender's send, this worker's receive)
        self.errors: Counter[str] = Counter()
        self.t_join = 0.0
        self.t_paired = 0.0
        self.finished = False
        self.bye_id = ""
        self._turn = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    # ---- arriving ------------------------------------------------------------------------------

    async def arrive(self, http: httpx.AsyncClient, slots: asyncio.Semaphore | None = None) -> bool:
        """Join (once one of `slots` is free), connect, say hello, wait to be paired. False (with an error
        counted) if any step fails."""
        self.t_join = time.monotonic()
        if slots is None:
            token = await self.join(http)
        else:
            async with slots:
                token = await self.join(http)
        if token is None or not await self.connect(token):
            return False
        if not await self.wait_state({"in_task"}, PAIR_TIMEOUT_S):
            self.errors[f"not_paired:{self.state or 'no_state'}"] += 1
            return False
        return True

    async def join(self, http: httpx.AsyncClient) -> str | None:
        """The HTTP join, with MTurk's parameters: the token for the socket, or None (an error counted)."""
        try:
            reply = await http.post(f"{self.base}/task/{self.run_id}/join", json={
                "assignment_id": self.assignment_id, "hit_id": f"H{self.worker_id}", "worker_id": self.worker_id,
                "turk_submit_to": "https://workersandbox.mturk.com",
            })
        except httpx.HTTPError as exc:
            self.errors[f"join_http:{type(exc).__name__}"] += 1
            return None
        if reply.status_code != 200:
            self.errors[f"join_refused:{reply.json().get('error', {}).get('code', reply.status_code)}"] += 1
            return None
        return str(reply.json()["token"])

    def hello(self, token: str) -> str:
        return dumps({"type": "hello", "v": PROTOCOL_VERSION, "token": token, "last_seq": 0})

    async def connect(self, token: str) -> bool:
        """Open the socket and say hello; its reader and heartbeat run as tasks of their own."""
        url = self.base.replace("http://", "ws://") + "/ws"
        try:
            self.ws = await connect(url, open_timeout=30, ping_interval=None, max_size=2**20)
            await self.ws.send(self.hello(token))
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            self.errors[f"connect:{type(exc).__name__}"] += 1
            return False
        self._tasks = [asyncio.create_task(self._read(self.ws)), asyncio.create_task(self._heartbeat(self.ws))]
        return True

    # ---- chatting ------------------------------------------------------------------------------

    async def say(self, *, bye: bool = False) -> bool:
        """Send one message as soon as the world gives this worker a turn."""
        assert self.ws is not None
        try:
            await asyncio.wait_for(self._turn.wait(), TURN_TIMEOUT_S)
        except TimeoutError:
            self.errors["no_turn"] += 1
            return False
        self._turn.clear()
        self.sent += 1
        client_id = f"{self.worker_id}.{self.sent}"
        if bye:
            self.bye_id = client_id
        data: dict[str, Any] = {"bye": True} if bye else {"c": client_id, "w": self.worker_id, "t": time.monotonic()}
        try:
            await self.ws.send(dumps({"type": "message", "client_id": client_id, "text": TEXT, "data": data}))
        except websockets.ConnectionClosed:
            self.errors["send_on_closed_socket"] += 1
            return False
        return True

    async def steady(self, start: float, until: float, interval: float, offset: float) -> None:
        """One message every `interval` seconds from `start + offset` until `until`."""
        at = start + offset
        while at < until:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            if not await self.say():
                return
            at += interval

    async def saturate(self, until: float) -> None:
        """Closed loop: the next message as soon as the server gives the next turn."""
        while time.monotonic() < until:
            if not await self.say():
                return

    async def finish(self) -> None:
        """Say goodbye, wait for the end of the conversation, submit, close."""
        if await self.say(bye=True) and await self.wait_state({"done"}, STATE_TIMEOUT_S):
            assert self.ws is not None
            await self.ws.send(dumps({"type": "submit"}))
            if await self.wait_state({"submitted"}, STATE_TIMEOUT_S):
                self.finished = True
            else:
                self.errors[f"not_submitted:{self.state}"] += 1
        elif self.state != "done":
            self.errors[f"not_done:{self.state}"] += 1
        await self.close()

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_state(self, states: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.state not in states:
            self._state_changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._state_changed.wait(), left)
            except TimeoutError:
                return False
        return True

    # ---- reading -------------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._on_frame(loads(raw), time.monotonic())
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self._closing:
                self.errors[f"socket_closed:{ws.close_code}"] += 1
                self.state = f"closed:{ws.close_code}"
                self._state_changed.set()

    def _on_frame(self, frame: dict[str, Any], now: float) -> None:
        seq = frame.get("seq")
        if seq is not None:
            if seq <= self.last_seq:
                self.errors["duplicate_seq"] += 1
                return
            if seq != self.last_seq + 1:
                self.errors["seq_gap"] += 1
            self.last_seq = seq
        kind = frame["type"]
        if kind == "message":
            if frame.get("mine") and frame.get("client_id"):
                self.acked.append(frame["client_id"])  # the echo of our own message is its ack
                return
            data = frame.get("data") or {}
            client_id = data.get("c")
            if client_id is not None:
                self.got[client_id] += 1
                self.senders.add(data["w"])
                self.latencies.append((data["t"], now))
        elif kind == "turn":
            self._on_turn()
        elif kind == "ack":
            self.acked.append(frame["client_id"])
        elif kind == "state":
            self.state = frame["state"]
            if self.state == "in_task":
                self.t_paired = now
            self._state_changed.set()
        elif kind == "error":
            self.errors[f"error_frame:{frame.get('code')}"] += 1

    def _on_turn(self) -> None:
        self._turn.set()

    async def _heartbeat(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await ws.send('{"type":"ping"}')
            except websockets.ConnectionClosed:
                return

    def result(self) -> dict[str, Any]:
        return {
            "worker": self.worker_id, "instance": self.instance, "t_join": self.t_join, "t_paired": self.t_paired,
            "sent": self.sent,
            "acked": [c for c in self.acked if c != self.bye_id], "got": dict(self.got),
            "senders": sorted(self.senders),
            "unacked": self.sent - len(self.acked), "errors": dict(self.errors), "finished": self.finished,
        }
