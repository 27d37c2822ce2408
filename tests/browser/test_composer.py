"""The composer in real Chromium: its limit is the server's (TaskInfo.limits.max_message_chars), and text
over it is refused with a message the worker sees, never cut."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.browser.worker_page import WorkerPage, task_url
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def open_writer(browser: Browser, live: LiveServer, worker: str) -> WorkerPage:
    url = task_url(live.base, "write", worker_id=worker, assignment_id=f"A-{worker}", turk_submit_to=live.base)
    page = await WorkerPage.open(browser, url)
    await page.wait_turn(timeout=15_000)
    return page


async def server_limit(live: LiveServer) -> int:
    async with httpx.AsyncClient(base_url=live.base) as client:
        info = (await client.get("/task/write/info")).json()
    return int(info["limits"]["max_message_chars"])


async def test_a_long_paste_up_to_the_servers_limit_is_sent_whole(ui_live: LiveServer, browser: Browser) -> None:
    limit = await server_limit(ui_live)
    assert limit > 2000  # the limit the page used to cut at
    page = await open_writer(browser, ui_live, "W-long")
    text = ("A question that runs on. " * (limit // 25 + 1))[: limit - 1] + "?"
    assert len(text) == limit

    await page.page.fill("#chat-input", text)
    assert await page.page.locator("#chat-input").input_value() == text  # not cut
    await expect(page.page.locator("#char-counter")).to_have_text(f"{limit} / {limit}")
    await page.send()
    await expect(page.messages(mine=True).last).to_have_attribute("data-status", "stored", timeout=15_000)
    assert page.said()[-1]["text"] == text
    assert await page.messages(mine=True).last.locator(".text").text_content() == text
    assert page.page_errors == []


async def test_text_over_the_servers_limit_is_refused_with_a_visible_message_and_never_cut(
    ui_live: LiveServer, browser: Browser
) -> None:
    limit = await server_limit(ui_live)
    page = await open_writer(browser, ui_live, "W-over")
    over = "x" * (limit + 7)

    await page.page.fill("#chat-input", over)
    assert await page.page.locator("#chat-input").input_value() == over  # kept whole: the worker decides
    note = page.page.locator("#widget .limit-note")
    await expect(note).to_be_visible()
    await expect(note).to_contain_text(f"{limit:,}")
    await expect(note).to_contain_text("7")
    await expect(page.page.locator("#send-button")).to_be_disabled()
    await page.page.press("#chat-input", "Enter")  # Enter does not send it either
    assert await page.page.locator("#chat-input").input_value() == over
    assert page.said() == []

    await page.page.fill("#chat-input", over[:limit])  # shortened: the note goes, and it can be sent
    await expect(note).to_be_hidden()
    await page.send()
    assert [len(frame["text"]) for frame in page.said()] == [limit]
    assert page.page_errors == []
