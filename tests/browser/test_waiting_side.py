"""The side that waits, in real Chromium against a real server (tests/browser/tasks.py "pair"): the pairing
is announced with each worker's role and the partner's; during the partner's turn the page shows whose turn
it is with its countdown, and that the partner is typing (relayed, throttled, never stored); a partner whose
tab closes is reported within seconds, and may still come back within the grace period."""

from __future__ import annotations

import re
import time

import pytest
from playwright.async_api import Browser, expect

from server.store import Store
from tests.browser.test_task_ui import open_worker
from tests.browser.test_worker_page import first_to_speak
from tests.browser.worker_page import WorkerPage, task_url
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def role_of(page: WorkerPage) -> str:
    notice = page.page.locator("#chat-log .notice", has_text="Your role:")
    await expect(notice).to_have_count(1, timeout=15_000)
    found = re.search(r"Your role: (Speaker \d)", await notice.text_content() or "")
    assert found, await notice.text_content()
    return found.group(1)


async def test_the_waiting_side_sees_the_pairing_the_partners_turn_with_its_countdown_and_typing(
    ui_live: LiveServer, browser: Browser, store: Store
) -> None:
    one = await open_worker(browser, ui_live, "pair", "W-one", width=1280)
    two = await open_worker(browser, ui_live, "pair", "W-two", width=1280)
    roles = {await role_of(one), await role_of(two)}
    assert roles == {"Speaker 1", "Speaker 2"}
    for page in (one, two):  # the partner's role too
        mine = await role_of(page)
        other = (roles - {mine}).pop()
        await expect(page.page.locator("#chat-log .notice", has_text="Your role:")).to_contain_text(other)

    speaker, listener = await first_to_speak(one, two)
    who = await role_of(speaker)
    status = listener.page.locator("#partner-status")
    await expect(status).to_be_visible()
    await expect(status).to_contain_text(f"{who}'s turn")
    await expect(status).to_contain_text(re.compile(r"\d:\d\d left"))
    await expect(listener.page.locator("#send-button")).to_be_disabled()

    started = time.monotonic()
    await speaker.page.locator("#chat-input").press_sequentially("Hello, nice to meet you", delay=40)
    typing = listener.page.locator("#typing-indicator")
    await expect(typing).to_be_visible()
    await expect(typing).to_have_text(f"{who} is typing…")
    seconds = time.monotonic() - started
    sent = [f for f in speaker.sent if f.get("type") == "typing" and f.get("active")]
    assert 1 <= len(sent) <= seconds / 2 + 1, f"{len(sent)} typing frames in {seconds:.1f} s: not throttled"

    await speaker.send()
    await expect(listener.messages(mine=False).last).to_contain_text("Hello, nice to meet you")
    await expect(typing).to_be_hidden()
    await listener.wait_turn()
    await expect(status).to_be_hidden()  # now it is the listener's own turn
    await expect(speaker.page.locator("#partner-status")).to_contain_text(f"{await role_of(listener)}'s turn")

    for page in (one, two):  # typing is relayed, never stored
        [agent_id] = {f["agent_id"] for f in page.received if f["type"] == "welcome"}
        events = [event for _, event in await store.events_after(agent_id, 0)]
        assert events and not [e for e in events if e.get("type") in ("typing", "partner_turn", "presence")]
    assert one.page_errors == [] and two.page_errors == []


async def test_a_partner_whose_tab_closes_is_reported_within_seconds_and_may_come_back(
    ui_live: LiveServer, browser: Browser
) -> None:
    one = await open_worker(browser, ui_live, "pair", "W-stay", width=1280)
    two = await open_worker(browser, ui_live, "pair", "W-go", width=1280)
    await one.expect_body("data-state", "in_task", timeout=15_000)
    await two.expect_body("data-state", "in_task", timeout=15_000)
    gone = await role_of(two)
    context = two.page.context

    seen = len(one.received)
    await two.page.close()  # a clean close: the browser says goodbye on the socket
    status = one.page.locator("#partner-status")
    try:
        await expect(status).to_contain_text(f"{gone}'s page closed", timeout=5_000)  # seconds, not the 40 s grace
    except AssertionError as exc:  # what the staying page was told after the close, to tell where it was lost
        since = [f.get("type") for f in one.received[seen:]]
        raise AssertionError(f"{exc}\nframes the staying page received after the close: {since}") from None
    await expect(status).to_contain_text("40 s")
    await one.expect_body("data-state", "in_task")  # the grace lets them come back

    url = task_url(ui_live.base, "pair", worker_id="W-go", assignment_id="A-W-go", turk_submit_to=ui_live.base)
    page = await context.new_page()  # the same browser: it holds the assignment's resume key
    back = WorkerPage(page, url)
    await page.goto(url)
    await back.expect_body("data-state", "in_task", timeout=15_000)
    await expect(status).to_contain_text(f"{gone} is back", timeout=10_000)
    speaker, listener = await first_to_speak(one, back)
    await speaker.say("still here")
    await expect(listener.messages(mine=False).last).to_contain_text("still here")
    assert one.page_errors == [] and back.page_errors == []
