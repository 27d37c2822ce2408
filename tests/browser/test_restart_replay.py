"""Real Chromium: two workers chatting, the server SIGKILLed and started again on the same database; both
pages reconnect on their own and continue the same conversation (its world replayed) to submit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from playwright.async_api import Browser, Route, expect

from server.store import Store
from tests.browser.test_worker_page import first_to_speak
from tests.browser.worker_page import WorkerPage, task_url
from tests.support.process import ServerProcess, running

RUNS = {"chat": "tests.support.tasks:chat_replay"}
WAIT_MS = 60_000  # the page's reconnect backoff and a restart on a busy machine


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with running(db_url, tmp_path, RUNS) as proc:
        yield proc


async def _open(browser: Browser, server: ServerProcess, worker: str) -> WorkerPage:
    url = task_url(server.base, "chat", worker_id=worker, assignment_id=f"A-{worker}", turk_submit_to=server.base)
    page = await WorkerPage.open(browser, url)
    await page.expect_body("data-connection", "connected", WAIT_MS)
    return page


def _turns(page: WorkerPage) -> list[str]:
    return [frame["turn_id"] for frame in page.received if frame.get("type") == "turn"]


async def _wait_for(done: Callable[[], bool], what: str) -> None:
    """Playwright's frame events have no awaitable form: a bounded poll."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting {WAIT_MS / 1000:.0f} s for {what}"
        await asyncio.sleep(0.05)


async def test_two_pages_continue_their_conversation_across_a_server_restart_to_submit(
    server: ServerProcess, browser: Browser, store: Store
) -> None:
    one, two = await _open(browser, server, "W1"), await _open(browser, server, "W2")
    speaker, listener = await first_to_speak(one, two)
    await speaker.say("before the restart")
    await expect(listener.messages(mine=False).last).to_contain_text("before the restart", timeout=WAIT_MS)

    await listener.wait_turn(WAIT_MS)
    await listener.page.fill("#chat-input", "after the restart")  # typed before the server goes, not sent
    server.kill()
    for page in (one, two):
        await expect(page.body).not_to_have_attribute("data-connection", "connected", timeout=WAIT_MS)
    # The turn is held while the server is away: the typed text stays, but it cannot be sent into nothing.
    await listener.expect_body("data-turn", "held", WAIT_MS)
    await expect(listener.page.locator("#send-button")).to_be_disabled()
    server.start()

    # The listener's turn, opened again by the replayed world (under a new id); the pages reconnected by
    # themselves, and what the listener typed is still there.
    await listener.wait_turn(WAIT_MS)
    await _wait_for(lambda: len(_turns(listener)) == 2, "the restarted server to send the listener's turn again")
    await expect(listener.page.locator("#chat-input")).to_have_value("after the restart")
    await listener.send()
    await expect(speaker.messages(mine=False).last).to_contain_text("after the restart", timeout=WAIT_MS)
    await speaker.say("second line")
    await expect(listener.messages(mine=False).last).to_contain_text("second line", timeout=WAIT_MS)
    await listener.say("last line")
    for page in (one, two):
        await page.wait_turn(WAIT_MS)
        await page.rate(4, field="enjoyed")
        await page.choose("Yes", field="partner_engaged")
        await page.send()

    posted: list[dict[str, list[str]]] = []

    async def external_submit(route: Route) -> None:
        posted.append(parse_qs(route.request.post_data or ""))
        await route.fulfill(status=200, content_type="text/html", body="<p>MTurk got it</p>")

    for page in (one, two):
        await page.expect_body("data-state", "done", WAIT_MS)
        await page.page.route(f"{server.base}/mturk/externalSubmit", external_submit)
        async with page.page.expect_navigation(url=f"{server.base}/mturk/externalSubmit"):
            await page.page.click("#submit-button")
    assert sorted(p["assignmentId"][0] for p in posted) == ["A-W1", "A-W2"]

    # One conversation, continued (not closed), every line once in the record and once on each page.
    (conversation,) = await store.conversations("chat")
    assert conversation.state == "completed"
    saved = await store.world_data(conversation.id)
    assert saved is not None
    assert [line["text"] for line in saved["dialogue"]] == [
        "before the restart", "after the restart", "second line", "last line"
    ]
    for page in (one, two):
        assert page.page_errors == []
        texts = [m["text"] for m in page.received if m.get("type") == "message" and m["kind"] == "chat"]
        assert sorted(set(texts)) == sorted(texts) and len(texts) == 4 + 1  # four lines and the survey's summary
