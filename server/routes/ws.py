"""The worker websocket, `/ws`: hello with a token, then frames dispatched by their validated type (`_dispatch`).

It is served as plain ASGI (`WorkerSocketRoute`, the outermost middleware), not as a FastAPI route: every
chat line is a frame in and a few frames out, and a route's socket passes each of them through Starlette's
WebSocket wrapper and every middleware's `send` wrapper, none of which does anything for this socket.

Transport failures are translated once, here, into `Disconnected`; the runner never sees socket errors.
Close codes (named in `server.close_codes.CloseCode`): 4400 bad first frame, 4401 invalid or expired token,
4403 not this agent's, 4408 silent for three heartbeats, 4409 replaced by a newer connection; 1012 the run
moved to another instance and 1013 no instance serves it yet (a takeover in progress): the page reconnects
and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from server.channel import Channel, Disconnected, dumps
from server.close_codes import CloseCode
from server.protocol import (
    PROTOCOL_VERSION,
    AnyClientFrame,
    ErrorFrame,
    FrameError,
    Hello,
    Ping,
    Pong,
    Say,
    Submit,
    TypingNow,
    parse_client_frame,
)
from server.relay import Relay
from server.runner import Run
from server.settings import Settings
from server.stall import StallGuard
from server.tokens import AgentClaim, TokenError, TokenSigner

WS_PATH = "/ws"
log = logging.getLogger(__name__)


class WorkerSocketRoute:
    """Pure ASGI middleware: a websocket to `/ws` goes straight to `serve`; everything else to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and _route_path(scope) == WS_PATH:
            await serve(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class AsgiSocket:
    """The channel's Socket over the server's ASGI `receive` and `send`, translating their failures."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._silence: StallGuard | None = None

    async def accept(self) -> None:
        message = await self._receive()
        if message["type"] != "websocket.connect":
            raise Disconnected(1006, "no handshake")
        await self._send({"type": "websocket.accept"})

    async def send_text(self, data: str) -> None:
        try:
            await self._send({"type": "websocket.send", "text": data})
        except (RuntimeError, OSError) as exc:  # the server's: the peer is gone, or the socket is closed
            raise Disconnected(1006) from exc

    async def close(self, code: int, reason: str) -> None:
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except (RuntimeError, OSError) as exc:
            raise Disconnected(1006) from exc

    def close_guard(self) -> None:
        if self._silence is not None:
            self._silence.close()

    async def receive(self, timeout: float) -> str | bytes:
        if self._silence is None or self._silence.limit != timeout:
            self.close_guard()
            self._silence = StallGuard(timeout)
        self._silence.start()
        try:
            message: Any = await self._receive()
        except asyncio.CancelledError:
            if self._silence.expired():
                with contextlib.suppress(Disconnected, TimeoutError):  # tell the page why, if it can hear
                    await asyncio.wait_for(self.close(CloseCode.SILENT, "no heartbeat"), 5.0)
                raise Disconnected(CloseCode.SILENT, "no heartbeat") from None
            raise
        except (RuntimeError, OSError) as exc:
            raise Disconnected(1006) from exc
        finally:
            self._silence.stop()
        if message["type"] == "websocket.disconnect":
            raise Disconnected(int(message.get("code") or 1000))
        if message.get("text") is not None:
            return str(message["text"])
        return bytes(message.get("bytes") or b"")


class Socket(Protocol):
    """A worker socket as this module reads it: a page's own (`AsgiSocket`) or one relayed from another
    instance (`server.relay.RemoteSocket`)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    async def receive(self, timeout: float) -> str | bytes: ...

    def close_guard(self) -> None: ...


async def _error(socket: Socket, code: str, message: str, client_id: str | None = None) -> None:
    await socket.send_text(dumps(ErrorFrame(code=code, message=message, client_id=client_id).model_dump()))


async def _refuse(socket: Socket, close_code: int, code: str, message: str) -> None:
    await _error(socket, code, message)
    await socket.close(close_code, code)


async def _hello(socket: Socket, raw: str | bytes, settings: Settings, signer: TokenSigner) -> tuple[AgentClaim, int]:
    try:
        frame = parse_client_frame(raw, max_bytes=settings.max_frame_bytes)
    except FrameError as exc:
        await _refuse(socket, CloseCode.BAD_FRAME, exc.code, exc.message)
        raise Disconnected(CloseCode.BAD_FRAME) from None
    if not isinstance(frame, Hello):
        await _refuse(socket, CloseCode.BAD_FRAME, "hello_expected", "The first frame must be a hello with your token.")
        raise Disconnected(CloseCode.BAD_FRAME)
    if frame.v != PROTOCOL_VERSION:  # a page loaded before Parley was updated
        await _refuse(socket, CloseCode.BAD_FRAME, "protocol_version",
                      "This page is out of date: the task server was updated. Reload the page to continue; "
                      "nothing you have sent is lost.")
        raise Disconnected(CloseCode.BAD_FRAME)
    try:
        claim = signer.verify(frame.token)
    except TokenError as exc:
        await _refuse(socket, CloseCode.TOKEN_INVALID, "token_invalid", str(exc))
        raise Disconnected(CloseCode.TOKEN_INVALID) from None
    return claim, frame.last_seq


async def _agent_of(socket: Socket, run: Run, claim: AgentClaim) -> str:
    row = await run.store.get_agent(claim.agent_id)
    if row is None or (row.worker_id, row.assignment_id, row.run_id) != (
        claim.worker_id, claim.assignment_id, claim.run_id
    ):
        await _refuse(socket, CloseCode.FORBIDDEN, "forbidden", "This token does not belong to this assignment.")
        raise Disconnected(CloseCode.FORBIDDEN)
    return claim.agent_id


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    socket = AsgiSocket(receive, send)
    try:
        await socket.accept()
    except Disconnected:
        return
    await serve_socket(socket, scope["app"].state)


async def serve_socket(socket: Socket, state: Any, *, relayed: bool = False) -> None:
    """One worker socket, from its hello to its close: served here when this instance owns its run, else
    relayed to the owner (server/relay.py). `relayed`: the socket is one another instance relays here."""
    settings: Settings = state.settings
    agent_id = ""
    run: Run | None = None
    try:
        raw = await socket.receive(settings.hello_timeout_s)
        claim, last_seq = await _hello(socket, raw, settings, state.signer)
        run = state.runs.get(claim.run_id)
        if run is None:
            relay: Relay = state.relay
            if relayed:  # this instance no longer owns it: the page reconnects and finds the owner
                await socket.close(CloseCode.MOVED, "moved")
                return
            if relay.shared:
                await relay.relay(socket, raw if isinstance(raw, str) else raw.decode("utf-8", "replace"),
                                  claim.run_id, claim.agent_id, last_seq)
                return
            await _refuse(socket, CloseCode.FORBIDDEN, "unknown_run",
                          "This task run is no longer served here. Please return the HIT.")
            return
        agent_id = await _agent_of(socket, run, claim)
        await run.connect(agent_id, socket, last_seq)
        await _serve(socket, run, agent_id, settings)
    except Disconnected:
        pass
    finally:
        socket.close_guard()
        if run is not None and agent_id:
            await run.disconnect(agent_id, socket)


async def _serve(socket: Socket, run: Run, agent_id: str, settings: Settings) -> None:
    limit = run.rate_limits.bucket(agent_id, per_s=settings.rate_per_s, burst=settings.rate_burst)
    channel = run.humans[agent_id].channel
    while True:
        raw = await socket.receive(settings.heartbeat_s * 3)
        try:
            frame = parse_client_frame(raw, max_bytes=settings.max_frame_bytes)
        except FrameError as exc:
            frame, error = None, ErrorFrame(code=exc.code, message=exc.message, client_id=exc.client_id)
        if not limit.allow():
            await channel.send_ephemeral(ErrorFrame(
                code="rate_limited", client_id=frame.client_id if isinstance(frame, Say) else None,
                message="You are sending too fast; that message was not sent. Wait a moment and send it again.",
            ).model_dump())
            continue
        if frame is None:
            await channel.send_ephemeral(error.model_dump())
            continue
        try:
            await _dispatch(frame, channel, run, agent_id, settings, socket)
        except Disconnected:
            raise
        except Exception:
            # A fault of ours (the store refused a write, a bug): the page hears that this frame failed, with
            # its client id so that it does not resend it on every reconnect, and the socket stays up.
            log.exception("handling a %s frame from agent %s failed", frame.type, agent_id,
                          extra={"run_id": run.id, "agent_id": agent_id})
            await channel.send_ephemeral(ErrorFrame(
                code="internal", client_id=frame.client_id if isinstance(frame, Say) else None,
                message="Something went wrong on our side and this was not saved. Try again in a moment.",
            ).model_dump())


async def _dispatch(
    frame: AnyClientFrame, channel: Channel, run: Run, agent_id: str, settings: Settings,
    socket: Socket,
) -> None:
    if isinstance(frame, Ping):
        await channel.send_ephemeral(Pong().model_dump())
    elif isinstance(frame, Say):
        if len(frame.text) > settings.max_message_chars:
            await channel.send_ephemeral(ErrorFrame(
                code="message_too_long", client_id=frame.client_id,
                message=f"Messages are limited to {settings.max_message_chars} characters; "
                "shorten it and send again.",
            ).model_dump())
            return
        await run.receive(agent_id, frame, socket)
    elif isinstance(frame, Submit):
        await run.submit(agent_id)
    elif isinstance(frame, TypingNow):
        await run.host.relay_typing(agent_id, frame.active)  # ephemeral: to the partners, never stored
    else:
        await channel.send_ephemeral(ErrorFrame(
            code="unexpected_hello", message="Already connected; hello is only the first frame.",
        ).model_dump())
