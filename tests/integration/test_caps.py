"""Caps hold exactly when many workers join at once: each join is admitted or refused against what is
already admitted, never against a count that misses the joins still in flight."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.server import LiveServer, serve

JOINS = 100  # concurrent joins in one test (500 was measured by hand: the same figures, five times slower)
RUNS = {"capped": "tests.support.tasks:chat_capped", "nearly-done": "tests.support.tasks:chat_nearly_done"}


@pytest.fixture
def capped(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(make_settings(db_url, tmp_path, RUNS)) as server:
        yield server


async def _join_all(live: LiveServer, run_id: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=live.base, timeout=60, limits=limits) as http:
        return list(await asyncio.gather(*(
            http.post(f"/task/{run_id}/join", json={"assignment_id": f"A{i}", "worker_id": f"W{i}"})
            for i in range(count)
        )))


async def test_concurrent_joins_admit_exactly_max_waiting_arriving_workers(capped: LiveServer) -> None:
    replies = await _join_all(capped, "capped", JOINS)
    admitted = [r for r in replies if r.status_code == 200]
    refused = {r.json()["error"]["code"] for r in replies if r.status_code != 200}
    assert len(admitted) == 20, f"{len(admitted)} of {JOINS} concurrent joins admitted; max_waiting is 20"
    assert refused == {"waiting_room_full"}


async def test_concurrent_joins_admit_no_more_workers_than_the_target_still_needs(capped: LiveServer) -> None:
    replies = await _join_all(capped, "nearly-done", 20)
    admitted = [r for r in replies if r.status_code == 200]
    assert len(admitted) == 4, f"{len(admitted)} admitted; two conversations of two workers are all it needs"
    assert {r.json()["error"]["code"] for r in replies if r.status_code != 200} == {"run_full"}
