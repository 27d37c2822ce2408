"""Live snapshots follow a run as workers go through it; /metrics speaks Prometheus' text format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from server.metrics import InstanceMetrics
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
    me = (await admin.get("/healthz")).json()["instance"]
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples}

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset({"parley_instance": me, **labels}.items()))]

    assert value("parley_agents", run="qa", state="submitted") == 1
    assert value("parley_conversations", run="qa", state="completed") == 1
    assert value("parley_messages_total", run="qa") >= 2 and families["parley_messages"].type == "counter"
    assert value("parley_connected_workers", run="qa") == 1
    assert families["parley_relay_latency_seconds"].type == "histogram"
    assert value("parley_relay_latency_seconds_bucket", le="+Inf") >= 2
    # Every sample names the instance that served it (its id, as /healthz says).
    assert {dict(labels).get("parley_instance") for _, labels in samples} == {me}


def test_an_instance_labels_every_sample_and_its_histogram_counts_cumulatively() -> None:
    histogram = Histogram("h_seconds", "help", buckets=[0.1, 1.0], registry=None)
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    served = GaugeMetricFamily("runs_served", "help", value=2)
    text = InstanceMetrics("i-1", histograms=[histogram]).render([served]).decode()
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        'runs_served{parley_instance="i-1"} 2.0',
        'h_seconds_bucket{le="0.1",parley_instance="i-1"} 2.0',
        'h_seconds_bucket{le="1.0",parley_instance="i-1"} 3.0',
        'h_seconds_bucket{le="+Inf",parley_instance="i-1"} 4.0',
        'h_seconds_count{parley_instance="i-1"} 4.0',
        'h_seconds_sum{parley_instance="i-1"} 3.65',
    ]


def test_two_apps_in_one_process_keep_their_own_registries() -> None:
    first, second = InstanceMetrics("i-1"), InstanceMetrics("i-2")
    assert first.registry is not second.registry
    assert 'parley_instance="i-1"' in first.render().decode()
    assert 'parley_instance="i-1"' not in second.render().decode()
