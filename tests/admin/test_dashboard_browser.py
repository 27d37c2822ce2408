"""A requester in real Chromium: logs in, watches a run live, opens a transcript, approves the work."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.admin.conftest import TOKEN, kept_form_answers
from tests.support.client import Crowd
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser
BOUND_MS = 10_000


async def _logged_in(browser: Browser, server: LiveServer, run_id: str) -> Page:
    page = await browser.new_page()
    page.set_default_timeout(BOUND_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.base}/admin?run={run_id}")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#token", "wrong-token")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("not the admin token")
    await page.fill("#token", TOKEN)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#live-status")).to_have_text("● live")
    assert errors == []
    return page


async def test_requester_watches_a_conversation_live_opens_it_and_approves(
    admin_server: LiveServer, admin_crowd: Crowd, browser: Browser
) -> None:
    page = await _logged_in(browser, admin_server, "qa")
    await expect(page.locator("#run-id")).to_have_text("qa")
    await expect(page.locator("#count-finished")).to_have_text("0")

    worker = await admin_crowd.start("qa", "W-browser")
    await expect(page.locator("#count-in-conversation")).to_have_text("1")
    await expect(page.locator("#count-live")).to_have_text("1")
    await worker.wait_turn(1)
    await worker.say("<b>Why</b> is the sea salty?")
    await worker.wait_turn(2)
    await worker.say("Rivers carry minerals into it.")
    await worker.wait_state("done")
    await expect(page.locator("#count-finished")).to_have_text("1")
    await expect(page.locator("#count-in-conversation")).to_have_text("0")
    await worker.send({"type": "submit"})
    await expect(page.locator("#count-submitted")).to_have_text("1")

    await page.locator("#conversations tbody tr").first.locator("button.open").click()
    transcript = page.locator("#transcript")
    await expect(transcript).to_be_visible()
    await expect(transcript.locator("#messages")).to_contain_text("<b>Why</b> is the sea salty?")  # as text
    await expect(transcript.locator("#messages b")).to_have_count(0)
    await expect(transcript.locator("#world-data")).to_contain_text("Rivers carry minerals into it.")
    participant = transcript.locator("li.participant")
    await expect(participant.locator(".worker")).to_have_text("W-browser")
    await expect(participant.locator(".state")).to_have_text("submitted")

    await participant.locator(".reject").click()  # no reason given: refused, nothing changes
    await expect(page.locator("#notice")).to_contain_text("needs a reason")
    await participant.locator(".feedback").fill("Thank you!")
    await participant.locator(".approve").click()
    await expect(page.locator("#notice")).to_contain_text("Approved the work of W-browser")
    await expect(transcript.locator("li.participant .state")).to_have_text("approved")
    await expect(transcript.locator("li.participant .history")).to_contain_text("approve: Thank you!")
    await expect(page.locator("#count-approved")).to_have_text("1")
    await expect(page.locator("#count-submitted")).to_have_text("0")
    await worker.wait_state("approved")
    await page.close()


async def test_export_links_download_the_run(admin_server: LiveServer, browser: Browser) -> None:
    page = await _logged_in(browser, admin_server, "qa")
    async with page.expect_download() as download_info:
        await page.click("#export-csv")
    download = await download_info.value
    assert download.suggested_filename == "qa.csv"
    path = await download.path()
    assert path is not None and path.read_text().startswith("run_id,conversation_id")
    await page.close()


async def test_a_form_runs_answers_and_agreement_show_on_its_page(admin_server: LiveServer, browser: Browser) -> None:
    await kept_form_answers(admin_server, "formrun")
    page = await _logged_in(browser, admin_server, "formrun")
    panel = page.locator("#form-answers")
    await expect(panel).to_be_visible()
    await expect(panel.locator("#form-summary")).to_contain_text("8 answer(s) to 3 item(s) from 3 worker(s)")
    await expect(panel.locator("#form-summary")).to_contain_text("1 could not be read")
    emotion = panel.locator('#form-agreement tr[data-field="emotion"] td')
    await expect(emotion).to_have_text(["emotion", "2", "6", "0.667", "0.455"])  # kappa 5/11: see FORM_WORK
    latest = panel.locator("#form-latest tbody tr")
    await expect(latest).to_have_count(8)
    await expect(latest.first).to_contain_text("unreadable: no emotion field in the Answer")
    await expect(panel.locator("#form-latest")).to_contain_text("emotion: <b>upset</b>")  # as text
    await expect(panel.locator("#form-latest b")).to_have_count(0)

    await page.select_option("#run-select", "qa")  # a chat run has no form answers: the panel goes
    await expect(page.locator("#run-id")).to_have_text("qa")
    await expect(panel).to_be_hidden()
    await page.close()
