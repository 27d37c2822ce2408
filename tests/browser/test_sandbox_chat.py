"""Two people on the built-in MTurk worker site in real Chromium: each accepts a chat HIT, they are paired,
chat (one of them tries HTML and script as text), submit, and MTurk shows both assignments Submitted with
the page's answer XML. Nothing the workers type runs as code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from playwright.async_api import Browser, FrameLocator, Page, expect

from tests.hits.harness import HitServer, serve, settings_for

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__owned=1"><script>window.__owned=1</script>'


# Did the payload run anywhere: in the worker site or in any frame of it?
OWNED = """() => [window.__owned, ...[...document.querySelectorAll('iframe')].map(f => {
    try { return f.contentWindow.__owned } catch (e) { return undefined } })]"""


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"chat": "tests.support.tasks:chat"})) as server:
        yield server


async def _accept(browser: Browser, site: HitServer, worker_id: str) -> tuple[Page, FrameLocator]:
    page = await browser.new_page(viewport={"width": 1200, "height": 1000})
    await page.goto(f"{site.base}/sandbox/worker")
    await page.fill("#worker-id", worker_id)
    await page.click("#use-worker")
    accept = page.locator("li[data-hit-id] .accept").first
    await expect(accept).to_be_enabled(timeout=15_000)
    await accept.click()
    frame = page.frame_locator("#task-frame")
    await expect(frame.locator("body")).to_have_attribute("data-connection", "connected", timeout=15_000)
    return page, frame


async def _say(frame: FrameLocator, text: str) -> None:
    await expect(frame.locator("body")).to_have_attribute("data-turn", "open", timeout=15_000)
    await frame.locator("#chat-input").fill(text)
    await frame.locator("#send-button").click()
    await expect(frame.locator("#chat-log .message.mine").last).to_contain_text(text[:20])


async def _whose_turn(a: FrameLocator, b: FrameLocator) -> tuple[FrameLocator, FrameLocator]:
    for _ in range(150):
        if await a.locator("body").get_attribute("data-turn") == "open":
            return a, b
        if await b.locator("body").get_attribute("data-turn") == "open":
            return b, a
        await asyncio.sleep(0.1)  # two pages, one of which will open its turn: poll both with a bound
    raise AssertionError("neither page got the first turn")


async def test_two_workers_accept_chat_and_submit_through_the_sandbox_worker_site(
    site: HitServer, browser: Browser
) -> None:
    page_a, a = await _accept(browser, site, "ABROWSERA")
    page_b, b = await _accept(browser, site, "ABROWSERB")
    for frame in (a, b):
        await expect(frame.locator("body")).to_have_attribute("data-state", "in_task", timeout=15_000)

    first, second = await _whose_turn(a, b)
    await _say(first, XSS)
    await expect(second.locator("#chat-log .message.theirs").first).to_contain_text(XSS, use_inner_text=True)
    for frame in (first, second):  # shown as literal text: no element was made from it
        await expect(frame.locator("#chat-log img, #chat-log script")).to_have_count(0)
    await _say(second, "hello there")
    await _say(first, "second line")
    await _say(second, "bye")

    for frame in (a, b):
        form = frame.locator("#widget [data-field='enjoyed']")
        await expect(form).to_be_visible(timeout=15_000)
        await form.locator("button[data-value='4']").click()
        await frame.locator("#widget [data-field='partner_engaged'] input[value='Yes']").check()
        await frame.locator("#send-button").click()
    for frame in (a, b):
        await expect(frame.locator("body")).to_have_attribute("data-state", "done", timeout=15_000)

    for page, frame in ((page_a, a), (page_b, b)):
        await frame.locator("#submit-button").click()
        await expect(page.locator("#notice")).to_contain_text("Submitted assignment", timeout=15_000)
        owned = await page.evaluate(OWNED)
        assert not any(owned), owned

    client = boto3.client(
        "mturk", region_name="us-east-1", endpoint_url=site.endpoint,
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
    )
    submitted = []
    for hit in client.list_hits()["HITs"]:
        found = client.list_assignments_for_hit(HITId=hit["HITId"], AssignmentStatuses=["Submitted"])
        submitted += found["Assignments"]
    assert sorted(a["WorkerId"] for a in submitted) == ["ABROWSERA", "ABROWSERB"]
    for assignment in submitted:
        assert "<QuestionIdentifier>summary</QuestionIdentifier>" in assignment["Answer"]
