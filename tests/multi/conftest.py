"""Several Parley instances behind a real load balancer (tests/support/cluster.py), on PostgreSQL and Redis.

Without Caddy, Redis or PostgreSQL (PARLEY_TEST_DATABASE_URL) these tests are skipped, and fail under CI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL, TEST_RUNS, _reset_pg
from tests.support.cluster import Cluster, require_cluster_parts


@pytest.fixture
def pg_url() -> str:
    """The test PostgreSQL database, emptied (a cluster shares one database: never SQLite)."""
    require_cluster_parts(PG_URL)
    asyncio.run(_reset_pg(PG_URL))
    return PG_URL


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(data_dir=tmp_path, db_url=pg_url, runs=TEST_RUNS, size=3) as started:
        yield started
