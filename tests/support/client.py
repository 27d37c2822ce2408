"""A simulated worker: joins over HTTP, talks the websocket protocol, records every frame it receives.

Waits are on frames arriving, each with a bound; nothing sleeps to wait for something.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from server.protocol import PROTOCOL_VERSION

Frame = dict[str, Any]


class JoinRefused(Exception):
    def __init__(self, status: int, body: Frame) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.code = body["error"]["code"]
        self.message = body["error"]["message"]


class Crowd:
    """Workers made for one test, all closed at its end."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.workers: list[Worker] = []

    def worker(self, run_id: str, worker_id: str, assignment_id: str | None = None) -> Worker:
        worker = Worker(self.base, run_id, worker_id, assignment_id)
        self.workers.append(worker)
        return worker

    async def start(self, run_id: str, worker_id: str) -> Worker:
        return await self.worker(run_id, worker_id).start()

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers))


class Worker:
    def __init__(self, base: str, run_id: str, worker_id: str, assignment_id: str | None = None) -> None:
        self.base = base
        self.run_id = run_id
        self.worker_id = worker_id
        self.assignment_id = assignment_id or f"A-{uuid.uuid4().hex[:12]}"
        self.token = ""
        self.agent_id = ""
        self.resume_key = ""  # what the page keeps to join its assignment again (docs/protocol.md, "Claims")
        self.frames: list[Frame] = []  # everything received, across reconnects
        self.events: dict[int, Frame] = {}  # sequenced events by seq
        self.turns: dict[str, Frame] = {}  # turns by turn id, in the order they opened (re-sent ones once)
        self.last_seq = 0
        self.duplicates = 0
        self.gaps: list[tuple[int, int]] = []
        self.heartbeat_s: float | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Condition()
        self.closed_code: int | None = None

    async def join(self) -> Frame:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            reply = await http.post(f"/task/{self.run_id}/join", json={
                "assignment_id": self.assignment_id, "hit_id": "H-test", "worker_id": self.worker_id,
                "turk_submit_to": "", **({"resume_key": self.resume_key} if self.resume_key else {}),
            })
        body = reply.json()
        if reply.status_code != 200:
            raise JoinRefused(reply.status_code, body)
        self.token, self.agent_id = body["token"], body["agent_id"]
        self.resume_key = body.get("resume_key", "")
        return dict(body)

    async def connect(self, last_seq: int | None = None) -> Frame:
        url = self.base.replace("http://", "ws://") + "/ws"
        self.ws = await websockets.connect(url, open_timeout=10, max_size=2**22)
        seen = len(self.frames)
        await self.send({"type": "hello", "v": PROTOCOL_VERSION, "token": self.token,
                         "last_seq": self.last_seq if last_seq is None else last_seq})
        self.closed_code = None
        self._reader = asyncio.create_task(self._read(self.ws))
        if self.heartbeat_s is not None:
            self._pinger = asyncio.create_task(self._ping(self.ws, self.heartbeat_s))
        return await self.wait_frame(lambda f: f["type"] in ("welcome", "error"), after=seen)

    async def start(self) -> Worker:
        await self.join()
        welcome = await self.connect()
        assert welcome["type"] == "welcome", welcome
        return self

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                async with self._arrived:
                    self.frames.append(frame)
                    if frame.get("type") == "turn":
                        self.turns.setdefault(frame["turn_id"], frame)
                    seq = frame.get("seq")
                    if seq is not None:
                        if seq in self.events:
                            self.duplicates += 1
                        else:
                            if seq != self.last_seq + 1:
                                self.gaps.append((self.last_seq, seq))
                            self.events[seq] = frame
                            self.last_seq = max(seq, self.last_seq)
                    self._arrived.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            async with self._arrived:
                self.closed_code = ws.close_code if ws.close_code is not None else 1006
                self._arrived.notify_all()

    async def _ping(self, ws: ClientConnection, every: float) -> None:
        """The page's heartbeat; stops with its socket."""
        while True:
            await asyncio.sleep(every)
            try:
                await ws.send('{"type":"ping"}')
            except websockets.ConnectionClosed:
                return

    def stop_heartbeat(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None

    async def send(self, frame: Frame | str) -> None:
        assert self.ws is not None
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def say(self, text: str = "", data: Frame | None = None, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message", "client_id": client_id, "text": text, "data": data or {}})
        return client_id

    async def wait_frame(self, match: Callable[[Frame], bool], *, after: int = 0, timeout: float = 10.0) -> Frame:
        async def find() -> Frame:
            async with self._arrived:
                while True:
                    for frame in self.frames[after:]:
                        if match(frame):
                            return frame
                    await self._arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_state(self, state: str, timeout: float = 10.0) -> Frame:
        return await self.wait_frame(lambda f: f["type"] == "state" and f["state"] == state, timeout=timeout)

    async def wait_turn(self, count: int = 1, timeout: float = 10.0) -> Frame:
        """The count-th turn opened for this worker (a turn re-sent after a reconnect counts once)."""
        await self.wait_frame(lambda f: f["type"] == "turn" and len(self.turns) >= count, timeout=timeout)
        return list(self.turns.values())[count - 1]

    async def wait_stored(self, client_id: str, *, after: int = 0, timeout: float = 10.0) -> Frame:
        """The frame saying `client_id` is stored: its echo in this worker's stream, or an ack for a resend
        of a message stored before. Both carry its `message_id`."""
        def stored(f: Frame) -> bool:
            return f.get("client_id") == client_id and (f["type"] == "ack" or (f["type"] == "message" and f["mine"]))

        return await self.wait_frame(stored, after=after, timeout=timeout)

    async def wait_closed(self, timeout: float = 10.0) -> int:
        async def closed() -> int:
            async with self._arrived:
                while self.closed_code is None:
                    await self._arrived.wait()
                return self.closed_code

        return await asyncio.wait_for(closed(), timeout)

    def chat(self) -> list[Frame]:
        return [e for _, e in sorted(self.events.items()) if e["type"] == "message"]

    def state(self) -> str | None:
        states = [e for _, e in sorted(self.events.items()) if e["type"] == "state"]
        return states[-1]["state"] if states else None

    async def drop(self) -> None:
        """Close the socket from this side, as a page losing its connection does."""
        self.stop_heartbeat()
        if self.ws is not None:
            await self.ws.close()
            await self.wait_closed()

    async def close(self) -> None:
        """End of test: close the socket and stop reading."""
        self.stop_heartbeat()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)

    async def abort(self) -> None:
        """Cut the TCP connection with no close handshake."""
        self.stop_heartbeat()
        if self.ws is not None:
            self.ws.transport.abort()
            await self.wait_closed()
