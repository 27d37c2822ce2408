"""The physical baseline: a bare FastAPI websocket relay that speaks just enough of Parley's protocol.

Same client load, none of Parley's work: no database, no sequence numbers, no states, no world. Join over
HTTP, hello, pairing in arrival order, then each message is acked, forwarded to the partner, and the
sender gets its next turn (the order Parley uses). Run by the bench as `uvicorn bench.echo:app`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class Pair:
    def __init__(self, first: WebSocket) -> None:
        self.sockets = [first]
        self.byes = 0


_waiting: list[Pair] = []


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/task/{run_id}/join")
async def join(run_id: str, body: dict[str, Any]) -> dict[str, str]:
    return {"agent_id": str(body["assignment_id"]), "token": str(body["assignment_id"]), "ws_path": "/ws",
            "state": "joined"}


@app.websocket("/ws")
async def relay(websocket: WebSocket) -> None:
    await websocket.accept()
    json.loads(await websocket.receive_text())  # hello
    await websocket.send_text(_dumps({"type": "welcome", "head_seq": 0}))
    if _waiting:
        pair = _waiting.pop()
        pair.sockets.append(websocket)
        for ws in pair.sockets:
            await ws.send_text(_dumps({"type": "state", "state": "in_task"}))
            await ws.send_text(_dumps({"type": "turn"}))
    else:
        pair = Pair(websocket)
        _waiting.append(pair)
    try:
        while True:
            frame = json.loads(await websocket.receive_text())
            kind = frame.get("type")
            if kind == "ping":
                await websocket.send_text(_dumps({"type": "pong"}))
            elif kind == "message":
                await websocket.send_text(_dumps({"type": "ack", "client_id": frame["client_id"]}))
                if frame["data"].get("bye"):
                    pair.byes += 1
                    if pair.byes == len(pair.sockets):
                        for ws in pair.sockets:
                            await ws.send_text(_dumps({"type": "state", "state": "done"}))
                    continue
                out = _dumps({"type": "message", "text": frame["text"], "data": frame["data"], "mine": False})
                for ws in pair.sockets:
                    if ws is not websocket:
                        await ws.send_text(out)
                await websocket.send_text(_dumps({"type": "turn"}))
            elif kind == "submit":
                await websocket.send_text(_dumps({"type": "state", "state": "submitted"}))
    except WebSocketDisconnect:
        pass
