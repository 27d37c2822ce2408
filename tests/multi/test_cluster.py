"""The cluster test bench itself: three instances behind Caddy, round-robin, a killed one left out."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.conftest import PG_URL
from tests.support.cluster import Cluster, missing_cluster_parts, under_ci


def test_caddy_and_redis_are_present_under_ci() -> None:
    missing = missing_cluster_parts(PG_URL)
    if missing and not under_ci():
        pytest.skip("the cluster tests need " + "; ".join(missing))
    assert not missing, "under CI (.ci/run) the cluster tests need " + "; ".join(missing)


def test_the_load_balancer_round_robins_over_the_instances_and_skips_a_killed_one(cluster: Cluster) -> None:
    assert len(set(cluster.ids)) == 3 and all(cluster.ids)
    answered = Counter(cluster.instance_behind_lb() for _ in range(30))
    assert answered == {0: 10, 1: 10, 2: 10}, f"not an even round-robin over the three instances: {answered}"

    cluster.kill(1)
    # At once, before any health check has noticed: a request that lands on the dead instance is retried on
    # a live one, so every request is answered, and never by the dead instance.
    with httpx.Client(timeout=15) as client:
        replies = [client.get(f"{cluster.url}/healthz") for _ in range(30)]
    assert [r.status_code for r in replies] == [200] * 30
    answered = Counter(cluster.index(r.json()["instance"]) for r in replies)
    assert set(answered) == {0, 2}, f"requests after the kill were answered by {answered}"

    cluster.wait_routed_only_to_live()
    assert cluster.live == [0, 2]
    upstreams = {u["address"]: u for u in cluster.caddy.upstream_status()}
    assert set(upstreams) == {f"127.0.0.1:{server.port}" for server in cluster.instances}
