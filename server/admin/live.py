"""Live dashboard updates over a websocket: a fresh snapshot of the run whenever it changes.

A run tells the hub about every agent state change, onboarding result and conversation end (its
observers); HIT and spend changes made by the HIT manager are picked up by a refresh every few seconds.
A websocket rather than server-sent events, because the server closes websockets (1012) when it shuts
down, while a never-ending HTTP response would hold the shutdown open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from server.admin import views
from server.admin.auth import AdminRefused, check_admin
from server.close_codes import CloseCode
from server.runner import Run

router = APIRouter()
REFRESH_S = 3.0  # the longest a change not announced by a run takes to show
COALESCE_S = 0.1  # a burst of changes becomes one snapshot


class Hub:
    """Wakes the live dashboards of a run when it changes. One per app."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Event]] = {}

    def watch(self, run: Run) -> None:
        if self._observe not in run.observers:
            run.observers.append(self._observe)

    async def _observe(self, run: Run, _kind: str, _payload: dict[str, Any]) -> None:
        self.changed(run.id)

    def changed(self, run_id: str) -> None:
        for event in self._listeners.get(run_id, ()):
            event.set()

    @contextlib.contextmanager
    def listen(self, run_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._listeners.setdefault(run_id, set()).add(event)
        try:
            yield event
        finally:
            listeners = self._listeners.get(run_id, set())
            listeners.discard(event)
            if not listeners:
                self._listeners.pop(run_id, None)


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers send cookies on cross-site websocket handshakes; only our own pages may open this one."""
    origin = websocket.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == websocket.headers.get("host", "")


def _refused_code(exc: AdminRefused) -> CloseCode:
    return CloseCode.TOKEN_INVALID if exc.status == 401 else CloseCode.FORBIDDEN


@router.websocket("/admin/live/{run_id}")
async def live(websocket: WebSocket, run_id: str) -> None:
    state = websocket.app.state
    try:
        await check_admin(websocket)
    except AdminRefused as exc:
        await websocket.close(code=_refused_code(exc), reason=exc.code)
        return
    if not _same_origin(websocket):
        await websocket.close(code=CloseCode.FORBIDDEN, reason="cross_origin")
        return
    await websocket.accept()
    hub: Hub = state.admin_hub
    run = state.runs.get(run_id)
    if run is not None:
        hub.watch(run)
    with hub.listen(run_id) as changed:
        reader = asyncio.create_task(_until_closed(websocket), name=f"admin-live:{run_id}")
        try:
            await _push_snapshots(websocket, run_id, changed, reader)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the page went away: nothing to clean up beyond the reader
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _push_snapshots(
    websocket: WebSocket, run_id: str, changed: asyncio.Event, reader: asyncio.Task[None]
) -> None:
    state = websocket.app.state
    while not reader.done():
        changed.clear()
        try:
            await check_admin(websocket)  # a session logged out since (or a new admin token) ends the stream
        except AdminRefused as exc:
            await websocket.close(code=_refused_code(exc), reason=exc.code)
            return
        snapshot = await views.run_snapshot(store=state.store, runs=state.runs, run_id=run_id)
        if snapshot is None:
            await websocket.close(code=CloseCode.UNKNOWN_RUN, reason="unknown_run")
            return
        await websocket.send_text(json.dumps({"type": "snapshot", **snapshot}, default=str))
        waiter = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.wait({waiter, reader}, timeout=REFRESH_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if changed.is_set() and not reader.done():
            await asyncio.sleep(COALESCE_S)


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the page sends until it closes, so a closed page ends the stream at once."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
