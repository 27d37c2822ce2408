"""The worker site follows MTurk's shapes, in real Chromium: HITs of one HIT type are one HIT group with its
count, the worker's accepted HITs are a queue at the top with Continue, the assignment being worked is in the
address (F5 returns to it), the list refreshes itself, and the page works at 375 px."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.screens import check_screen
from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import create_hit

pytestmark = pytest.mark.browser
BOUND_MS = 15_000  # the list refreshes itself every 5 s; a loaded machine gets three times that


async def open_as(browser: Browser, server: SandboxServer, worker_id: str, *, width: int = 1280) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": 800})
    page.set_default_timeout(BOUND_MS)
    await page.goto(f"{server.base_url}/sandbox/worker")
    await page.fill("#worker-id", worker_id)
    await page.click("#use-worker")
    await expect(page.locator("#notice")).to_contain_text(f"Working as {worker_id}")
    return page


def group(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("#hits li.card", has=page.locator(".title", has_text=title))


async def test_hits_of_one_type_are_one_group_with_its_count_and_the_queue_is_on_top(
    server: SandboxServer, mturk: Any, browser: Browser
) -> None:
    for _ in range(5):
        create_hit(mturk, server.external_question(), Title="Chat about a picture")
    create_hit(mturk, server.external_question(), Title="Rate a sentence", Reward="0.10")
    page = await open_as(browser, server, "AGROUPS1")

    await expect(page.locator("#hits li.card")).to_have_count(2)  # two HIT types, not six cards
    chat = group(page, "Chat about a picture")
    await expect(chat.locator(".available")).to_have_text("5 HITs available")
    await expect(group(page, "Rate a sentence").locator(".available")).to_have_text("1 HIT available")

    await chat.locator(".accept").click()
    queue = page.locator("#queue tbody tr")
    await expect(queue).to_have_count(1)
    assignment_id = await queue.first.get_attribute("data-assignment-id")
    assert assignment_id
    await expect(page).to_have_url(f"{server.base_url}/sandbox/worker?assignment={assignment_id}")
    await expect(chat.locator(".available")).to_have_text("4 HITs available")
    queue_box, groups_box = await page.locator("#queue").bounding_box(), await page.locator("#hits").bounding_box()
    assert queue_box and groups_box and queue_box["y"] < groups_box["y"]  # "Your HITs" comes first

    await page.reload()  # F5: the assignment being worked opens again
    await expect(page.locator("#task-panel")).to_be_visible()
    await expect(page.locator("#task-frame")).to_have_attribute("src", re.compile(f"assignmentId={assignment_id}&"))
    await page.click("#close-task")
    await expect(page).to_have_url(f"{server.base_url}/sandbox/worker")
    await page.locator("#queue tbody tr button.continue").click()
    await expect(page.locator("#task-frame")).to_have_attribute("src", re.compile(f"assignmentId={assignment_id}&"))
    await expect(page).to_have_url(f"{server.base_url}/sandbox/worker?assignment={assignment_id}")


async def test_a_list_left_open_refreshes_itself_and_accepting_from_a_group_takes_a_hit_still_free(
    server: SandboxServer, mturk: Any, browser: Browser
) -> None:
    create_hit(mturk, server.external_question(), Title="Chat about a picture")
    create_hit(mturk, server.external_question(), Title="Chat about a picture")
    first = await open_as(browser, server, "AFIRST1")
    second = await open_as(browser, server, "ASECOND1")
    await expect(group(second, "Chat about a picture").locator(".available")).to_have_text("2 HITs available")

    await group(first, "Chat about a picture").locator(".accept").click()
    await expect(first.locator("#queue tbody tr")).to_have_count(1)
    # The second worker's list, left open, catches up on its own; accepting from it works either way.
    await expect(group(second, "Chat about a picture").locator(".available")).to_have_text("1 HIT available")
    await group(second, "Chat about a picture").locator(".accept").click()
    await expect(second.locator("#queue tbody tr")).to_have_count(1)
    await expect(second.locator("#notice")).not_to_contain_text("taken")
    taken = server.sandbox.inspect(lambda state, _: sorted((a.worker_id, a.hit_id) for a in state.assignments.values()))
    assert [worker for worker, _ in taken] == ["AFIRST1", "ASECOND1"] and taken[0][1] != taken[1][1]


async def test_the_site_fits_a_phone_and_return_can_be_tapped(
    server: SandboxServer, mturk: Any, browser: Browser
) -> None:
    hit = create_hit(mturk, server.external_question(), Title="A task with a long title that wraps on a phone")
    page = await open_as(browser, server, "APHONE1", width=375)
    await group(page, "A task with a long title").locator(".accept").click()
    await expect(page.locator("#task-panel")).to_be_visible()
    await expect(page.locator("#queue tbody tr")).to_have_count(1)

    overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone"
    back = page.locator("#return-task")
    found = await back.bounding_box()
    assert found is not None and found["x"] >= 0 and found["x"] + found["width"] <= 375
    await back.click()
    await expect(page.locator("#notice")).to_contain_text("Returned assignment")
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["NumberOfAssignmentsAvailable"] == 1


async def test_screens_of_the_worker_site_at_a_desktop_and_a_phone(
    server: SandboxServer, mturk: Any, browser: Browser
) -> None:
    for _ in range(3):
        create_hit(mturk, server.external_question(), Title="Chat about a picture with another person")
    create_hit(mturk, server.external_question(), Title="Rate a sentence", Reward="0.10")
    page = await open_as(browser, server, "ASCREENS1")
    await expect(page.locator("#hits li.card")).to_have_count(2)
    await check_screen(page, "worker-site-groups")
    await group(page, "Chat about a picture").locator(".accept").click()
    await expect(page.locator("#queue tbody tr")).to_have_count(1)
    await expect(page.frame_locator("#task-frame").locator("#heading")).to_contain_text("Working")
    await check_screen(page, "worker-site-working")
