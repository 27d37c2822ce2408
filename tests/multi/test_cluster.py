"""The cluster test bench itself: three instances behind Caddy, round-robin, websockets passed through, a
killed one left out."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.protocol import PROTOCOL_VERSION
from tests.conftest import PG_URL
from tests.support.cluster import Cluster, missing_cluster_parts, under_ci


def test_caddy_and_redis_are_present_under_ci() -> None:
    missing = missing_cluster_parts(PG_URL)
    if missing and not under_ci():
        pytest.skip("the cluster tests need " + "; ".join(missing))
    assert not missing, "under CI (.ci/run) the cluster tests need " + "; ".join(missing)


async def _refused_hello(cluster: Cluster) -> tuple[dict[str, object], int | None]:
    """Open a websocket through the load balancer, say hello with a bad token: the error frame and close code."""
    async with connect(cluster.ws_url, open_timeout=15) as ws:
        await ws.send(json.dumps({"type": "hello", "v": PROTOCOL_VERSION, "token": "not-a-token"}))
        frame: dict[str, object] = json.loads(await asyncio.wait_for(ws.recv(), 15))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 15)
        return frame, ws.close_code


async def test_the_load_balancer_round_robins_over_the_instances_and_skips_a_killed_one(cluster: Cluster) -> None:
    assert len(set(cluster.ids)) == 3 and all(cluster.ids)
    answered = Counter(await asyncio.to_thread(lambda: [cluster.instance_behind_lb() for _ in range(30)]))
    assert answered == {0: 10, 1: 10, 2: 10}, f"not an even round-robin over the three instances: {answered}"

    # Websockets pass through, frames and close codes both ways (one socket to each instance in turn).
    for _ in range(3):
        frame, close_code = await _refused_hello(cluster)
        assert frame["type"] == "error" and frame["code"] == "token_invalid", frame
        assert close_code == 4401

    cluster.kill(1)
    # At once, before any health check has noticed: a request that lands on the dead instance is retried on
    # a live one, so every request is answered, and never by the dead instance.
    async with httpx.AsyncClient(timeout=15) as client:
        replies = [await client.get(f"{cluster.url}/healthz") for _ in range(30)]
    assert [r.status_code for r in replies] == [200] * 30
    answered = Counter(cluster.index(r.json()["instance"]) for r in replies)
    assert set(answered) == {0, 2}, f"requests after the kill were answered by {answered}"

    await asyncio.to_thread(cluster.wait_routed_only_to_live)
    assert cluster.live == [0, 2]
    upstreams = {u["address"]: u for u in await asyncio.to_thread(cluster.caddy.upstream_status)}
    assert set(upstreams) == {f"127.0.0.1:{server.port}" for server in cluster.instances}
