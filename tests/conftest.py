"""Fixtures: a database URL per backend (SQLite always; PostgreSQL when PARLEY_TEST_DATABASE_URL is set),
and a real server on a free port."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from server.settings import Settings
from server.store import Store
from tests.browser.worker_page import chromium
from tests.support.client import Crowd
from tests.support.server import LiveServer, serve

PG_URL = os.environ.get("PARLEY_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """One Chromium per test: PARLEY_CHROMIUM, Debian's, or Playwright's own (see tests/browser_setup.py)."""
    async with chromium() as launched:
        yield launched


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
        return
    asyncio.run(_reset_pg(PG_URL))
    yield PG_URL


async def _reset_pg(url: str) -> None:
    store = Store(url)
    try:
        await store.drop_all()
    finally:
        await store.close()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = Store(db_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


# In-process test servers keep Python's own collector settings: `tune_gc` freezes what exists at start-up,
# which in a test process would pin every earlier test's garbage. `tests/test_gc.py` tests it alone.
os.environ.setdefault("PARLEY_GC_THRESHOLDS", "")


def make_settings(db_url: str, tmp_path: Path, runs: dict[str, str]) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=db_url, demo_runs=runs, heartbeat_s=5.0, log_level="WARNING",
        mturk_publish=[],
    )


TEST_RUNS = {
    "qa": "tests.support.tasks:qa",
    "chat": "tests.support.tasks:chat",
    "chat-short": "tests.support.tasks:chat_short_wait",
    "gated": "tests.support.tasks:gated",
    "crashing": "tests.support.tasks:crashing",
}


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(make_settings(db_url, tmp_path, TEST_RUNS)) as server:
        yield server


@pytest.fixture
async def crowd(live: LiveServer) -> AsyncIterator[Crowd]:
    c = Crowd(live.base)
    try:
        yield c
    finally:
        await c.close()
