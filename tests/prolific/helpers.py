"""Steps a participant takes on the emulator's site, as a browser would (no following of redirects), and the
bounded waits on what a server does in the background."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from server.prolific_wiring import prolific_provider
from server.providers.prolific import ProlificProvider
from server.settings import Settings
from server.store import Store

T = TypeVar("T")
WAIT_S = 60.0  # every wait on a server's background pass: generous, for a busy 2-core machine
POLL_S = 0.1


def take_place(site: httpx.Client, study_id: str, pid: str) -> dict[str, str]:
    """Start the study as `pid`; returns the parameters the study URL was filled with."""
    reply = site.post(f"/sandbox/prolific/participant/studies/{study_id}/start", data={"pid": pid})
    assert reply.status_code == 303, reply.text
    query = parse_qs(urlsplit(reply.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}


def hand_in(site: httpx.Client, pid: str, code: str) -> httpx.Response:
    return site.get("/sandbox/prolific/submissions/complete", params={"cc": code, "pid": pid})


def try_place(site: httpx.Client, study_id: str, pid: str) -> httpx.Response:
    return site.post(f"/sandbox/prolific/participant/studies/{study_id}/start", data={"pid": pid})


@asynccontextmanager
async def client_provider(settings: Settings) -> AsyncIterator[ProlificProvider]:
    """The Prolific provider as a client of a server's database (as the CLI makes it)."""
    store = Store(settings.db_url)
    await store.open()
    provider = prolific_provider(settings, store)
    try:
        yield provider
    finally:
        await provider.aclose()
        await store.close()


async def eventually(what: str, probe: Callable[[], Awaitable[T | None]], timeout: float = WAIT_S) -> T:
    """Poll `probe` until it answers something (a server's background pass, seen from outside, offers no event
    to wait on), bounded; the failure names `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"waited {timeout:.0f}s for {what}")


def eventually_sync(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """`eventually` for a test that drives a process or a CLI from plain (not async) code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(POLL_S)
    raise AssertionError(f"waited {timeout:.0f}s for {what}")
