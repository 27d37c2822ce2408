"""The dashboard on first try, in real Chromium: a server started with no configuration (as `make run`
does) makes a local admin token when it listens on loopback only and logs a one-click login link; beyond
loopback it makes none and says how to turn the dashboard on. Review messages are in plain words."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.admin.conftest import TOKEN, admin_settings
from tests.browser.screens import check_screen
from tests.conftest import TEST_RUNS
from tests.support.client import Crowd
from tests.support.process import ROOT, ServerProcess
from tests.support.server import LiveServer, free_port, serve

pytestmark = pytest.mark.browser
BOUND_MS = 15_000
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/admin#token=[A-Za-z0-9_-]{20,})")


@pytest.fixture
def zero_config(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """`python -m server.serving` on loopback with no PARLEY_ADMIN_TOKEN, logging what `make run` logs."""
    server = ServerProcess(
        port=free_port(), data_dir=tmp_path, db_url=db_url, runs={"qa": TEST_RUNS["qa"]}, PARLEY_LOG_LEVEL="INFO",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def login_link(server: ServerProcess) -> str:
    deadline = time.monotonic() + 30  # the line is logged at start-up, before /healthz answers
    while time.monotonic() < deadline:
        found = LINK.search(server.log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no login link in the log:\n{server.log.read_text()[-3000:]}")


async def new_page(browser: Browser) -> tuple[Page, list[str]]:
    page = await browser.new_page()
    page.set_default_timeout(BOUND_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


async def test_zero_config_server_logs_a_login_link_that_opens_the_dashboard_in_one_click(
    zero_config: ServerProcess, browser: Browser
) -> None:
    link = login_link(zero_config)
    assert link.startswith(zero_config.base)
    page, errors = await new_page(browser)
    await page.goto(link)
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#live-status")).to_have_text("● live")
    await expect(page.locator("#run-id")).to_have_text("qa")
    assert "token" not in page.url  # taken out of the address bar and its history at once
    await page.reload()  # the session cookie keeps the requester logged in
    await expect(page.locator("#dashboard")).to_be_visible()

    stale, _ = await new_page(browser)  # a link from an earlier start (another token) says what to do
    await stale.goto(f"{zero_config.base}/admin#token=an-old-token-from-another-start")
    await expect(stale.locator("#login")).to_be_visible()
    await expect(stale.locator("#login-error")).to_contain_text("login link")
    assert errors == []


def test_the_readme_try_it_section_names_the_dashboard_and_its_login_link() -> None:
    readme = (ROOT / "README.md").read_text()
    try_it = readme[readme.index("## Try it"):readme.index("## Configuration")]
    assert "/admin" in try_it and "login link" in try_it


async def test_beyond_loopback_no_token_is_made_and_the_page_says_how_to_turn_the_dashboard_on(
    db_url: str, tmp_path: Path, browser: Browser
) -> None:
    settings = admin_settings(db_url, tmp_path, token="").model_copy(update={"host": "0.0.0.0"})
    with serve(settings) as server:
        page, errors = await new_page(browser)
        await page.goto(f"{server.base}/admin")
        await expect(page.locator("#login-error")).to_contain_text("PARLEY_ADMIN_TOKEN")
        await expect(page.locator("#login-error")).to_contain_text("127.0.0.1")
        assert not (tmp_path / "admin-token").exists()
        assert errors == []


async def _transcript_of_a_submitted_worker(browser: Browser, server: LiveServer) -> tuple[Page, list[str]]:
    crowd = Crowd(server.base)
    try:
        worker = await crowd.start("qa", "W-plain")
        await worker.wait_turn(1)
        await worker.say("Why is the sky blue?")
        await worker.wait_turn(2)
        await worker.say("Light scatters.")
        await worker.wait_state("done")
        await worker.send({"type": "submit"})
        await worker.wait_state("submitted")
    finally:
        await crowd.close()
    page, errors = await new_page(browser)
    await page.goto(f"{server.base}/admin?run=qa")
    await page.fill("#token", TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.locator("#conversations tbody tr").first.locator("button.open").click()
    return page, errors


async def test_review_messages_are_plain_words_and_amounts_are_checked(
    admin_server: LiveServer, browser: Browser
) -> None:
    page, errors = await _transcript_of_a_submitted_worker(browser, admin_server)
    participant = page.locator("#transcript li.participant")
    notice = page.locator("#notice")
    await participant.locator(".feedback").fill("A little extra")

    for amount, words in (
        ("", "Enter the bonus in dollars, like 0.50."),
        ("lots", "“lots” is not an amount in dollars: enter it like 0.50."),
        ("0.505", "Bonuses are paid in whole cents: enter at most two decimals, like 0.50."),
        ("0", "A bonus is between $0.01 and $100.00."),
    ):
        await participant.locator(".amount").fill(amount)
        await participant.locator(".bonus").click()
        await expect(notice).to_have_text(f"Bonus not paid: {words}")
        await expect(notice).to_have_attribute("data-kind", "error")
    assert "String should" not in (await notice.text_content() or "")

    await participant.locator(".approve").click()
    await expect(notice).to_have_text("Approved the work of W-plain (recorded in Parley: this work is not on MTurk).")
    await expect(participant.locator(".state")).to_have_text("approved")
    await check_screen(page, "dashboard-transcript")
    assert errors == []


async def test_screens_of_the_dashboard_login_at_a_desktop_and_a_phone(
    admin_server: LiveServer, browser: Browser
) -> None:
    page, errors = await new_page(browser)
    await page.goto(f"{admin_server.base}/admin")
    await expect(page.locator("#login")).to_be_visible()
    await check_screen(page, "dashboard-login")
    assert errors == []
