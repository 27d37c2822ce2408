"""Any instance accepts any worker: sockets and calls for a run owned elsewhere travel to its owner.

A worker's socket lands on whichever instance the load balancer picked. If that instance owns the run,
it serves the socket itself (server/routes/ws.py). If another instance owns it, this one *relays*:

    page ⇄ socket instance (`Relayed`) ⇄ delivery layer ⇄ owner (`RemoteSocket`) ⇄ Run / Channel

On the owner a relayed socket is a `RemoteSocket`: the same `Socket` the channel sends to and the same
`receive` the websocket loop reads from, so every rule of the protocol (store, then ack, then deliver;
gap-free `seq`; resume; dedup; one live socket per agent, a newer one closing the older with 4409) is the
owner's own code, unchanged, whichever instance holds the page.

Nothing acked lives only in transit. The socket instance tracks the last `seq` it passed to the page: a
duplicate is dropped, and a gap (a message lost in the delivery layer) is filled from the agent's stored
stream before the frame that revealed it. When messages may have been lost wholesale (the broker
connection broke, the other instance is gone, or the owner changed) the affected sockets are closed with
1012, and their pages reconnect through the load balancer and resume by `seq`, as after a restart.

Calls (`call`) carry an HTTP request that must run on the owner, such as a join, and its answer back.

Messages (`op`): to the owner `open` (a relayed socket's hello), `frame`, `gone` (the page's socket
closed), `call`; to the socket instance `send`, `close`, `reply`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from server.channel import SEND_TIMEOUT_S, Disconnected, Socket, dumps
from server.claims import Refusal
from server.close_codes import CloseCode
from server.delivery import Delivery, Message
from server.registry import Runs
from server.store import Store
from server.store.leases import LeaseStore
from server.supervisor import Supervisor

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0

Handler = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]


class OwnerUnavailable(Exception):
    """No live instance owns the run right now, or its owner did not answer in time."""


class RemoteSocket:
    """The owner's end of a relayed socket: sends go to the socket instance, frames arrive by `feed`."""

    def __init__(self, conn: str, holder: str, delivery: Delivery) -> None:
        self.conn = conn
        self.holder = holder
        self._delivery = delivery
        self._inbox: asyncio.Queue[str | bytes | Disconnected] = asyncio.Queue()
        self.closed = False

    def feed(self, item: str | bytes | Disconnected) -> None:
        self._inbox.put_nowait(item)

    async def send_text(self, data: str) -> None:
        if self.closed:
            raise Disconnected(1006)
        self._delivery.send(self.holder, {"op": "send", "conn": self.conn, "text": data})

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._delivery.send(self.holder, {"op": "close", "conn": self.conn, "code": code, "reason": reason})
        self.feed(Disconnected(code, reason))

    async def receive(self, timeout: float) -> str | bytes:
        try:
            async with asyncio.timeout(timeout):
                item = await self._inbox.get()
        except TimeoutError:
            await self.close(CloseCode.SILENT, "no heartbeat")
            raise Disconnected(CloseCode.SILENT, "no heartbeat") from None
        if isinstance(item, Disconnected):
            self.closed = True
            raise item
        return item

    def close_guard(self) -> None:
        pass


class Relayed:
    """The socket instance's end: the page's socket, the owner it is relayed to, and what went out."""

    def __init__(self, conn: str, socket: Any, owner: str, agent_id: str, last_seq: int) -> None:
        self.conn = conn
        self.socket = socket
        self.owner = owner
        self.agent_id = agent_id
        self.last_seq = last_seq
        self.outbox: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue()
        self.closing = False

    def close(self, code: int, reason: str) -> None:
        self.outbox.put_nowait(("close", code, reason))


class Relay:
    """This instance's side of the delivery layer."""

    def __init__(
        self, delivery: Delivery, *, runs: Runs, store: Store, heartbeat_s: float, check_every_s: float,
        serve_remote: Callable[[RemoteSocket], Awaitable[None]],
    ) -> None:
        self.delivery = delivery
        self.runs = runs
        self.store = store
        self.leases = LeaseStore(store)
        self.heartbeat_s = heartbeat_s
        self.check_every_s = check_every_s
        self._serve_remote = serve_remote
        self.handlers: dict[str, Handler] = {}
        self._relayed: dict[str, Relayed] = {}  # conn -> a page socket here, relayed to its run's owner
        self._remote: dict[str, RemoteSocket] = {}  # conn -> a page socket elsewhere, served here
        self._calls: dict[str, tuple[asyncio.Future[Message], str]] = {}
        self.supervisor = Supervisor("relay")

    @property
    def me(self) -> str:
        return self.delivery.instance_id

    @property
    def shared(self) -> bool:
        return self.delivery.shared

    async def start(self) -> None:
        await self.delivery.start(self._on_message, on_reset=self._reset, on_unreachable=self._unreachable)
        if self.shared:
            self.supervisor.spawn(self._watch(), name="watch-peers")

    async def aclose(self) -> None:
        for relayed in list(self._relayed.values()):
            relayed.close(CloseCode.MOVED, "This server is stopping; reconnecting to another.")
        await self.supervisor.aclose()
        await self.delivery.aclose()

    # ---- the socket instance ------------------------------------------------------------------

    async def owner_of(self, run_id: str) -> str | None:
        return await self.leases.live_owner(run_id, time.time())

    async def relay(self, socket: Any, hello: str, run_id: str, agent_id: str, last_seq: int) -> None:
        """Carry `socket` (its hello already read) to the run's owner until either side closes it."""
        owner = await self.owner_of(run_id)
        if owner is None or owner == self.me:  # owner: this instance is still starting to serve it
            await _unavailable(socket)
            return
        conn = f"{self.me}/{secrets.token_hex(8)}"
        relayed = Relayed(conn, socket, owner, agent_id, last_seq)
        self._relayed[conn] = relayed
        writer = self.supervisor.spawn(self._write(relayed), name=f"relay-out:{conn}")
        self.delivery.send(owner, {"op": "open", "conn": conn, "from": self.me, "text": hello})
        try:
            while True:
                raw = await socket.receive(self.heartbeat_s * 3 + 5)  # the owner enforces the heartbeat
                frame: Message = {"op": "frame", "conn": conn}
                if isinstance(raw, bytes):
                    frame["b64"] = base64.b64encode(raw).decode()
                else:
                    frame["text"] = raw
                self.delivery.send(owner, frame)
        except Disconnected as exc:
            if not relayed.closing:
                self.delivery.send(owner, {"op": "gone", "conn": conn, "code": exc.code})
        finally:
            self._relayed.pop(conn, None)
            writer.cancel()

    async def _write(self, relayed: Relayed) -> None:
        socket = relayed.socket
        try:
            while True:
                kind, first, second = await relayed.outbox.get()
                if kind == "close":
                    relayed.closing = True
                    await _close_quietly(socket, first, second)
                    return
                text: str = first
                seq = _seq_of(text)
                if seq is not None:
                    if seq <= relayed.last_seq:
                        continue  # already passed on (a replay overlapping a live send)
                    if seq > relayed.last_seq + 1:
                        await self._fill(relayed, seq)
                    relayed.last_seq = seq
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await socket.send_text(text)
        except (Disconnected, TimeoutError):
            relayed.closing = True
            await _close_quietly(socket, CloseCode.SERVER_ERROR, "send failed")

    async def _fill(self, relayed: Relayed, upto: int) -> None:
        """Events `last_seq + 1 .. upto - 1` never arrived: send them from the agent's stored stream."""
        missing = await self.store.events_after(relayed.agent_id, relayed.last_seq, limit=upto - relayed.last_seq - 1)
        for seq, payload in missing:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await relayed.socket.send_text(dumps({**payload, "seq": seq}))
            relayed.last_seq = seq
        if relayed.last_seq != upto - 1:
            raise Disconnected(CloseCode.SERVER_ERROR, f"events up to {upto - 1} are not stored")
        log.info("relayed socket %s: filled seq %d..%d from the store", relayed.conn, upto - len(missing), upto - 1)

    async def call(self, run_id: str, name: str, body: dict[str, Any], timeout: float = CALL_TIMEOUT_S) -> Message:
        """Run the handler `name` on the run's owner and return what it answered. Raises `Refusal` as the
        owner did, `LookupError` for a run that does not exist, `OwnerUnavailable` otherwise."""
        owner = await self.owner_of(run_id)
        if owner is None or owner == self.me:
            if await self.store.get_run(run_id) is None:
                raise LookupError(run_id)
            raise OwnerUnavailable(run_id)
        call_id = secrets.token_hex(8)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = (future, owner)
        self.delivery.send(owner, {"op": "call", "id": call_id, "from": self.me, "name": name, "run": run_id,
                                   "body": body})
        try:
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise OwnerUnavailable(run_id) from None
        finally:
            self._calls.pop(call_id, None)
        if reply.get("ok"):
            return dict(reply["body"])
        if "refusal" in reply:
            code, message, status = reply["refusal"]
            raise Refusal(code, message, status)
        raise OwnerUnavailable(run_id)

    # ---- the owner ----------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        op = message.get("op")
        conn = message.get("conn", "")
        if op == "send":
            relayed = self._relayed.get(conn)
            if relayed is not None:
                relayed.outbox.put_nowait(("text", message["text"], None))
        elif op == "frame":
            remote = self._remote.get(conn)
            if remote is not None:
                remote.feed(message["text"] if "text" in message else base64.b64decode(message["b64"]))
        elif op == "close":
            relayed = self._relayed.get(conn)
            if relayed is not None:
                relayed.close(int(message["code"]), str(message.get("reason", "")))
        elif op == "open":
            self._open(conn, str(message["from"]), str(message["text"]))
        elif op == "gone":
            remote = self._remote.get(conn)
            if remote is not None:
                remote.feed(Disconnected(int(message.get("code") or 1006)))
        elif op == "call":
            self.supervisor.spawn(self._answer(message), name=f"call:{message.get('name')}")
        elif op == "reply":
            pending = self._calls.get(str(message.get("id")))
            if pending is not None and not pending[0].done():
                pending[0].set_result(message)
        else:
            log.warning("ignored a delivery message with op %r", op)

    def _open(self, conn: str, holder: str, hello: str) -> None:
        remote = RemoteSocket(conn, holder, self.delivery)
        remote.feed(hello)
        self._remote[conn] = remote

        async def serve() -> None:
            try:
                await self._serve_remote(remote)
            finally:
                self._remote.pop(conn, None)
                if not remote.closed:  # ended without a close from either side: tell the socket instance
                    await remote.close(CloseCode.SERVER_ERROR, "ended")

        self.supervisor.spawn(serve(), name=f"relay-in:{conn}")

    async def _answer(self, message: Message) -> None:
        reply: Message = {"op": "reply", "id": message.get("id"), "ok": False}
        run = self.runs.get(str(message.get("run")))
        handler = self.handlers.get(str(message.get("name")))
        try:
            if run is not None and handler is not None:
                reply = {**reply, "ok": True, "body": await handler(run, dict(message.get("body") or {}))}
        except Refusal as exc:
            reply["refusal"] = [exc.code, exc.message, exc.status]
        except Exception:
            log.exception("a %s call relayed from %s failed", message.get("name"), message.get("from"))
        self.delivery.send(str(message.get("from")), reply)

    # ---- losses -------------------------------------------------------------------------------

    def _reset(self) -> None:
        """Messages may have been lost: every relayed socket starts over, on both ends."""
        self._drop(lambda _peer: True, "The connection between Parley's servers was interrupted; reconnecting.")

    def _unreachable(self, instance_id: str) -> None:
        self._drop(lambda peer: peer == instance_id, "The server handling this task moved; reconnecting.")

    def _drop(self, gone: Callable[[str], bool], why: str) -> None:
        for relayed in list(self._relayed.values()):
            if gone(relayed.owner):
                relayed.close(CloseCode.MOVED, why)
        for remote in list(self._remote.values()):
            if gone(remote.holder):
                remote.closed = True
                remote.feed(Disconnected(1006, "relay lost"))
        for future, peer in list(self._calls.values()):
            if gone(peer) and not future.done():
                future.set_result({"ok": False})

    async def _watch(self) -> None:
        """Every few seconds: a peer whose instance row lapsed is gone (SIGKILL, a cut network)."""
        while True:
            await asyncio.sleep(self.check_every_s)
            try:
                live = {row.id for row in await self.leases.live_instances(time.time())}
            except Exception:
                log.warning("could not read the live instances; relayed sockets are checked next time")
                continue
            self._drop(_not_in(live), "The server handling this task stopped; reconnecting.")


def _not_in(live: set[str]) -> Callable[[str], bool]:
    return lambda peer: peer not in live


def _seq_of(text: str) -> int | None:
    if '"seq":' not in text:
        return None
    try:
        seq = orjson.loads(text).get("seq")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


async def _unavailable(socket: Socket) -> None:
    with contextlib.suppress(Disconnected, TimeoutError):
        await socket.send_text(dumps({
            "type": "error", "code": "owner_unavailable",
            "message": "The server for this task is changing over; reconnecting in a moment.",
        }))
    await _close_quietly(socket, CloseCode.TRY_AGAIN_LATER, "owner unavailable")


async def _close_quietly(socket: Socket, code: int, reason: str) -> None:
    with contextlib.suppress(Disconnected, TimeoutError):
        async with asyncio.timeout(5.0):
            await socket.close(code, reason)
