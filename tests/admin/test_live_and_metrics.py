"""Live snapshots follow a run as workers go through it; /metrics speaks Prometheus' text format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from server.metrics import Histogram
from tests.admin.conftest import TOKEN, finish_qa
from tests.support.client import Crowd
from tests.support.server import LiveServer


async def _snapshot_where(ws: ClientConnection, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def wait() -> dict[str, Any]:
        while True:
            snapshot: dict[str, Any] = json.loads(await ws.recv())
            if match(snapshot):
                return snapshot

    return await asyncio.wait_for(wait(), 10)


async def test_the_live_socket_pushes_a_snapshot_when_a_conversation_finishes(
    admin_server: LiveServer, admin: httpx.AsyncClient, admin_crowd: Crowd
) -> None:
    session = (await admin.post("/admin/api/session", json={"token": TOKEN})).cookies["parley_admin"]
    url = admin_server.ws_url.replace("/ws", "/admin/live/qa")
    async with connect(url, additional_headers={"Cookie": f"parley_admin={session}"}, open_timeout=10) as ws:
        first = await _snapshot_where(ws, lambda s: True)
        assert first["conversations"]["finished"] == 0
        worker = await admin_crowd.start("qa", "W-live")
        busy = await _snapshot_where(ws, lambda s: s["workers"]["in_conversation"] == 1)
        assert busy["conversations"]["live"] == 1
        await worker.wait_turn(1)
        await worker.say("A question?")
        await worker.wait_turn(2)
        await worker.say("An answer.")
        done = await _snapshot_where(ws, lambda s: s["conversations"]["finished"] == 1)
        assert done["workers"]["in_conversation"] == 0
        assert done["recent"][0]["messages"] >= 2


async def test_metrics_report_runs_agents_conversations_and_messages(
    admin: httpx.AsyncClient, admin_crowd: Crowd
) -> None:
    await finish_qa(admin_crowd, "W-metrics")
    reply = await admin.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = reply.text.splitlines()
    # Every sample names the instance that served it (its id, as /healthz says), first among its labels.
    me = f'parley_instance="{(await admin.get("/healthz")).json()["instance"]}"'
    assert f'parley_agents{{{me},run="qa",state="submitted"}} 1' in lines
    assert f'parley_conversations{{{me},run="qa",state="completed"}} 1' in lines
    assert any(line.startswith(f'parley_messages_total{{{me},run="qa"}} ') for line in lines)
    assert f'parley_connected_workers{{{me},run="qa"}} 1' in lines
    assert "# TYPE parley_relay_latency_seconds histogram" in lines
    assert any(line.startswith(f'parley_relay_latency_seconds_bucket{{{me},le="+Inf"}} ') for line in lines)
    for line in lines:  # every sample is `name{labels} number`, with the instance among its labels
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1].replace("+Inf", "inf"))
            assert me in line, line


def test_a_histogram_counts_cumulatively_with_an_infinite_bucket() -> None:
    histogram = Histogram("h_seconds", "help", [0.1, 1.0])
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.lines()[2:] == [
        'h_seconds_bucket{le="0.1"} 2', 'h_seconds_bucket{le="1"} 3', 'h_seconds_bucket{le="+Inf"} 4',
        "h_seconds_sum 3.65", "h_seconds_count 4",
    ]
