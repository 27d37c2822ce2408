"""A person on the worker site in real Chromium: preview, accept, work in the iframe, submit."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import HTML_QUESTION, create_hit

pytestmark = pytest.mark.browser
BOUND_MS = 10_000


async def open_as(browser: Browser, server: SandboxServer, worker_id: str) -> Page:
    page = await browser.new_page()
    page.set_default_timeout(BOUND_MS)
    await page.goto(f"{server.base_url}/sandbox/worker")
    await page.fill("#worker-id", worker_id)
    await page.click("#use-worker")
    return page


async def test_person_previews_accepts_and_submits_an_external_question(
    server: SandboxServer, mturk: Any, browser: Browser
) -> None:
    hit = create_hit(mturk, server.external_question(), Title="Describe the picture")
    page = await open_as(browser, server, "abrowser1")
    card = page.locator(f"li[data-hit-id='{hit['HITId']}']")
    await expect(card.locator(".title")).to_have_text("Describe the picture")

    await card.locator(".preview").click()
    frame = page.frame_locator("#task-frame")
    await expect(frame.locator("#heading")).to_have_text("Preview")
    await expect(frame.locator("#submit")).to_be_disabled()

    await page.click("#accept-previewed")
    await expect(frame.locator("#heading")).to_have_text("Working ABROWSER1")
    await frame.locator("#answer").fill("A red bicycle")
    await frame.locator("#submit").click()

    await expect(page.locator("#notice")).to_contain_text("Submitted assignment")
    await expect(page.locator("#task-panel")).to_be_hidden()
    await expect(page.locator("#assignments td.status")).to_have_text(["Submitted"])
    (assignment,) = mturk.list_assignments_for_hit(HITId=hit["HITId"])["Assignments"]
    assert assignment["WorkerId"] == "ABROWSER1"
    assert "<FreeText>A red bicycle</FreeText>" in assignment["Answer"]
    assert await page.evaluate("localStorage.getItem('parley-sandbox-worker-id')") == "ABROWSER1"


async def test_person_submits_and_returns_html_questions_and_sees_refusals(
    server: SandboxServer, mturk: Any, browser: Browser
) -> None:
    submitted = create_hit(mturk, HTML_QUESTION, Title="Pick a colour")
    returned = create_hit(mturk, HTML_QUESTION, Title="Pick another colour")
    mturk.create_worker_block(WorkerId="ABLOCKED", Reason="test")
    blocked = await open_as(browser, server, "ABLOCKED")
    await expect(blocked.locator(".card .refusal")).to_have_count(2)
    await expect(blocked.locator(".card .refusal").first).to_contain_text("blocked")
    await expect(blocked.locator(".card .accept").first).to_be_disabled()

    page = await open_as(browser, server, "AHTML1")
    frame = page.frame_locator("#task-frame")
    await page.locator(f"li[data-hit-id='{submitted['HITId']}'] .accept").click()
    await frame.locator("#submitButton").click()
    await expect(page.locator("#notice")).to_contain_text("Submitted assignment")
    await page.locator(f"li[data-hit-id='{returned['HITId']}'] .accept").click()
    await expect(frame.locator("input[name='assignmentId']")).to_have_count(1)
    await page.click("#return-task")

    await expect(page.locator("#notice")).to_contain_text("Returned assignment")
    await expect(page.locator("#assignments td.status")).to_have_text(["Returned", "Submitted"])
    (answer,) = mturk.list_assignments_for_hit(HITId=submitted["HITId"])["Assignments"]
    assert "<QuestionIdentifier>colour</QuestionIdentifier><FreeText>blue</FreeText>" in answer["Answer"]
    assert mturk.get_hit(HITId=returned["HITId"])["HIT"]["NumberOfAssignmentsAvailable"] == 1
