"""A real server with the admin dashboard installed and an admin token, and a QA worker who finishes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from server.settings import Settings
from tests.conftest import TEST_RUNS, make_settings
from tests.support.client import Crowd, Worker
from tests.support.server import LiveServer, serve

TOKEN = "test-admin-token-0123456789abcdef"


def admin_settings(db_url: str, tmp_path: Path, token: str = TOKEN) -> Settings:
    return make_settings(db_url, tmp_path, TEST_RUNS).model_copy(update={"admin_token": token})


@pytest.fixture
def admin_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(admin_settings(db_url, tmp_path)) as server:
        yield server


@pytest.fixture
async def admin(admin_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with the admin bearer token."""
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=admin_server.base, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
async def admin_crowd(admin_server: LiveServer) -> AsyncIterator[Crowd]:
    crowd = Crowd(admin_server.base)
    try:
        yield crowd
    finally:
        await crowd.close()


async def finish_qa(crowd: Crowd, worker_id: str, *, submit: bool = True) -> Worker:
    """A worker does the QA task (question, answer) and, by default, submits."""
    worker = await crowd.start("qa", worker_id)
    await worker.wait_turn(1)
    await worker.say(f"Question from {worker_id}?")
    await worker.wait_turn(2)
    await worker.say(f"Answer from {worker_id}.")
    await worker.wait_state("done")
    if submit:
        await worker.send({"type": "submit"})
        await worker.wait_state("submitted")
    return worker
