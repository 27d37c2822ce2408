"""An HTMLQuestion is anyone's HTML (CreateHIT needs no credential): its scripts run, as on MTurk, but
never on Parley's origin, so they cannot read the admin API with a logged-in admin's cookie."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Frame, Page, expect

from tests.admin.conftest import TOKEN, admin_settings
from tests.sandbox.conftest import mturk_client
from tests.sandbox.helpers import create_hit
from tests.support.server import LiveServer, serve

pytestmark = pytest.mark.browser
BOUND_MS = 15_000

# The script reads the admin API as the page's own origin would, and shows (and submits) what it saw.
PROBE = """<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd">
<HTMLContent><![CDATA[<!DOCTYPE html><html><head><title>Probe</title></head><body>
<p id="seen"></p>
<form name="mturk_form" id="mturk_form" method="post" action="https://www.mturk.com/mturk/externalSubmit">
<input type="hidden" name="seen" id="seen-field"><input type="submit" id="submitButton" value="Submit"></form>
<script>
function show(what) {
  document.getElementById("seen-field").value = what;
  document.getElementById("seen").textContent = what;
}
fetch("/admin/api/whoami", {credentials: "include"})
  .then((reply) => reply.text().then((text) => show("read " + reply.status + " " + text)))
  .catch((error) => show("refused: " + error));
</script>
</body></html>]]></HTMLContent><FrameHeight>300</FrameHeight></HTMLQuestion>"""


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(admin_settings(db_url, tmp_path)) as server:
        yield server


async def _admin(browser: Browser, server: LiveServer) -> tuple[BrowserContext, Page]:
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(BOUND_MS)
    reply = await page.request.post(f"{server.base}/admin/api/session", data={"token": TOKEN})
    assert reply.status == 200
    assert (await page.request.get(f"{server.base}/admin/api/whoami")).status == 200  # the admin is logged in
    return context, page


async def _seen(frame: Page | Frame) -> str:
    seen = frame.locator("#seen")
    await expect(seen).not_to_have_text("", timeout=BOUND_MS)
    return await seen.inner_text()


async def test_an_html_question_opened_by_a_logged_in_admin_cannot_read_the_admin_api(
    site: LiveServer, browser: Browser
) -> None:
    hit = create_hit(mturk_client(f"{site.base}/sandbox/mturk"), PROBE)
    context, page = await _admin(browser, site)
    try:
        reply = await page.goto(f"{site.base}/sandbox/worker/html/{hit['HITId']}")
        assert reply is not None and reply.status == 200
        seen = await _seen(page)
        print(f"the HTMLQuestion's script saw: {seen!r}")  # noqa: T201
        assert seen.startswith("refused"), f"the HTMLQuestion's script read the admin API: {seen!r}"
        assert "admin" not in seen
        assert await page.evaluate("window.origin") == "null"  # an opaque origin, as on MTurk's own domain
    finally:
        await context.close()


async def test_an_html_question_in_the_worker_site_runs_its_script_and_submits_but_reads_nothing(
    site: LiveServer, browser: Browser
) -> None:
    mturk = mturk_client(f"{site.base}/sandbox/mturk")
    hit = create_hit(mturk, PROBE)
    context, page = await _admin(browser, site)
    try:
        await page.goto(f"{site.base}/sandbox/worker")
        await page.fill("#worker-id", "APROBE1")
        await page.click("#use-worker")
        await page.locator(f"li[data-hit-id='{hit['HITId']}'] .accept").click()
        await expect(page.locator("#task-frame")).to_have_attribute("sandbox", "allow-scripts allow-forms")
        frame = page.frame_locator("#task-frame")
        await expect(frame.locator("#seen")).to_have_text("refused: TypeError: Failed to fetch", timeout=BOUND_MS)
        await frame.locator("#submitButton").click()
        await expect(page.locator("#notice")).to_contain_text("Submitted assignment", timeout=BOUND_MS)
        (assignment,) = mturk.list_assignments_for_hit(HITId=hit["HITId"])["Assignments"]
        assert "<FreeText>refused: TypeError: Failed to fetch</FreeText>" in assignment["Answer"]
    finally:
        await context.close()


def test_the_html_question_page_is_served_in_an_opaque_origin(site: LiveServer) -> None:
    hit = create_hit(mturk_client(f"{site.base}/sandbox/mturk"), PROBE)
    reply = httpx.get(f"{site.base}/sandbox/worker/html/{hit['HITId']}", timeout=10)
    policy = reply.headers["content-security-policy"]
    assert "sandbox allow-scripts allow-forms" in policy and "allow-same-origin" not in policy
