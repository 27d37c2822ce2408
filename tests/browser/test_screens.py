"""Screenshots of the task page in each state a worker meets, at 1280 and 375 px, with layout facts checked
(tests/browser/screens.py): preview, waiting, your turn, partner's turn, survey, partner left, done."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser.screens import check_screen
from tests.browser.test_task_ui import open_worker
from tests.browser.test_worker_page import first_to_speak
from tests.browser.worker_page import WorkerPage, task_url
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def test_the_task_page_in_each_state_fits_a_desktop_and_a_phone(ui_live: LiveServer, browser: Browser) -> None:
    preview = await WorkerPage.open(browser, task_url(ui_live.base, "pair"), width=1280)
    await preview.expect_body("data-phase", "preview")
    await check_screen(preview.page, "task-preview")

    one = await open_worker(browser, ui_live, "pair", "W-screen1", width=1280)
    await one.expect_body("data-state", "waiting", timeout=15_000)
    await check_screen(one.page, "task-waiting")

    two = await open_worker(browser, ui_live, "pair", "W-screen2", width=1280)
    speaker, listener = await first_to_speak(one, two)
    await expect(listener.page.locator("#partner-status")).to_be_visible()
    await check_screen(listener.page, "task-partners-turn")
    await speaker.page.fill("#chat-input", "Hello! Shall we start with the topic?")
    await check_screen(speaker.page, "task-your-turn", your_turn=True)

    await speaker.send()
    for text in ("Yes, let's. I like quiet parks.", "Me too, especially early.", "Great, bye!"):
        speaker, listener = listener, speaker
        await speaker.say(text)
    for page in (one, two):
        await page.wait_turn()
        await expect(page.page.locator("#widget [data-field='enjoyed']")).to_be_visible()
    await expect(one.page.locator("#partner-status")).to_be_hidden()  # both answer at once: no "their turn"
    await one.rate(4, field="enjoyed")
    await one.choose("Yes", field="partner_engaged")
    await check_screen(one.page, "task-survey", your_turn=True, input_selector="#widget [data-field='enjoyed'] button")
    for page in (one, two):
        if page is two:
            await two.rate(5, field="enjoyed")
            await two.choose("Yes", field="partner_engaged")
        await page.send()
    await one.expect_body("data-state", "done", timeout=15_000)
    await expect(one.page.locator("#submit-button")).to_be_visible()
    await check_screen(one.page, "task-done")
    assert one.page_errors == [] and two.page_errors == [] and preview.page_errors == []


async def test_the_partner_left_page_fits_a_desktop_and_a_phone(ui_live: LiveServer, browser: Browser) -> None:
    stays = await open_worker(browser, ui_live, "pair_quick", "W-stays", width=1280)
    goes = await open_worker(browser, ui_live, "pair_quick", "W-goes", width=1280)
    await stays.expect_body("data-state", "in_task", timeout=15_000)
    await goes.page.close()
    await stays.expect_body("data-state", "partner_left", timeout=15_000)
    await expect(stays.page.locator("#submit-button")).to_be_visible()
    await check_screen(stays.page, "task-partner-left")
    assert stays.page_errors == []
