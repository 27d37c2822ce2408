"""Two participants on the built-in Prolific's site in real Chromium: each starts the chat study, lands on
Parley's task page with Prolific's parameters, is paired, chats, answers the survey, submits, and is sent
to the completion URL with the study's code; Prolific then shows both submissions awaiting review."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from server.providers.base import SubmissionStatus
from server.providers.prolific import ProlificProvider, codes_for
from tests.conftest import TEST_RUNS, make_settings
from tests.prolific.helpers import client_provider, eventually
from tests.support.server import LiveServer, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(db_url, tmp_path, TEST_RUNS).model_copy(
        update={"prolific_publish": ["chat"], "mturk_sync_s": 0.3}
    )
    with serve(settings) as server:
        yield server


@pytest.fixture
async def provider(site: LiveServer) -> AsyncIterator[ProlificProvider]:
    async with client_provider(site.settings) as made:
        yield made


async def _start(browser: Browser, site: LiveServer, pid: str) -> Page:
    page = await browser.new_page(viewport={"width": 1200, "height": 1000})
    await page.goto(f"{site.base}/sandbox/prolific/participant?pid={pid}")
    start = page.locator("#studies button").first

    async def listed() -> bool | None:  # the page lists studies as they were when it loaded
        if await start.count():
            return True
        await page.reload()
        return None

    await eventually("the study manager to publish the chat run's study on the participant site", listed)
    await start.click()
    await expect(page.locator("body")).to_have_attribute("data-connection", "connected", timeout=15_000)
    assert f"PROLIFIC_PID={pid}" in page.url and "SESSION_ID=" in page.url
    return page


async def _say(page: Page, text: str) -> None:
    await expect(page.locator("body")).to_have_attribute("data-turn", "open", timeout=15_000)
    await page.locator("#chat-input").fill(text)
    await page.locator("#send-button").click()
    await expect(page.locator("#chat-log .message.mine").last).to_contain_text(text)


async def _whose_turn(a: Page, b: Page) -> tuple[Page, Page]:
    """The page that gets the first turn, and the other: whichever opens its turn first."""
    waits = {asyncio.ensure_future(page.wait_for_selector("body[data-turn='open']", timeout=30_000)): page
             for page in (a, b)}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in pending:
        wait.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    first = next(iter(done))
    await first  # raises when neither page got the first turn within the bound
    return (a, b) if waits[first] is a else (b, a)


async def test_two_participants_chat_and_are_sent_to_the_completion_url_with_the_code(
    site: LiveServer, browser: Browser, provider: ProlificProvider
) -> None:
    a = await _start(browser, site, "PID-CHROME-A")
    b = await _start(browser, site, "PID-CHROME-B")
    for page in (a, b):
        await expect(page.locator("body")).to_have_attribute("data-state", "in_task", timeout=15_000)
    first, second = await _whose_turn(a, b)
    for speaker, text in ((first, "hello"), (second, "hi there"), (first, "second line"), (second, "bye")):
        await _say(speaker, text)
    for page in (a, b):
        form = page.locator("#widget [data-field='enjoyed']")
        await expect(form).to_be_visible(timeout=15_000)
        await form.locator("button[data-value='4']").click()
        await page.locator("#widget [data-field='partner_engaged'] input[value='Yes']").check()
        await page.locator("#send-button").click()
    for page in (a, b):
        await expect(page.locator("body")).to_have_attribute("data-state", "done", timeout=15_000)
        await page.locator("#submit-button").click()
        await page.wait_for_url("**/sandbox/prolific/submissions/complete?cc=*", timeout=15_000)
        assert page.url.endswith(f"cc={codes_for('chat').done}")
        await expect(page.locator("#status")).to_have_attribute("data-status", "AWAITING REVIEW")

    found = {s.worker_id: (s.status, s.code) for s in await provider.submissions("chat")}
    done = (SubmissionStatus.AWAITING_REVIEW, codes_for("chat").done)
    assert found == {"PID-CHROME-A": done, "PID-CHROME-B": done}
