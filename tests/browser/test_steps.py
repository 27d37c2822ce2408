"""Surveys and labelling have room of their own, in real Chromium (tests/browser/tasks.py runs): a survey is a
step under the transcript that leaves the chat its height; labels are sent with one control and shown once;
a qualification ends with its result and its sample chat set apart; no prompt is shown twice."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.test_task_ui import box, open_worker
from tests.browser.worker_page import WorkerPage
from tests.support.server import LiveServer
from worlds.pairwise_eval import QUESTION

pytestmark = pytest.mark.browser

# Send controls a worker could press: the composer's and any under a chat message.
SEND_CONTROLS = "#send-button, .annotation-send"


async def visible_send_controls(page: Page) -> int:
    return int(await page.locator(SEND_CONTROLS).evaluate_all(
        "nodes => nodes.filter(n => n.checkVisibility() && n.getClientRects().length > 0).length"
    ))


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (outer["x"] - 1 <= inner["x"] and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
            and outer["y"] - 1 <= inner["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1)


async def in_view(page: Page, locator: Locator) -> bool:
    viewport = page.viewport_size
    assert viewport is not None
    return inside(await box(locator), {"x": 0, "y": 0, "width": viewport["width"], "height": viewport["height"]})


async def test_a_survey_is_a_step_under_the_transcript_that_leaves_the_chat_its_height(
    ui_live: LiveServer, browser: Browser
) -> None:
    one = await open_worker(browser, ui_live, "survey", "W1", width=1280)
    two = await open_worker(browser, ui_live, "survey", "W2", width=1280)
    await expect(one.page.locator("#context-text")).to_contain_text("You are the", timeout=15_000)
    customer, support = (
        (one, two) if "customer" in (await one.page.locator("#context-text").text_content() or "") else (two, one)
    )
    await customer.say("My kettle arrived with a cracked lid.")
    await support.say("Sorry about that! A new one is on its way.")
    await support.wait_turn()
    form = support.page.locator("#widget .fragment[data-state='ready']")
    await expect(form).to_be_visible()

    log = await box(support.page.locator("#chat-log"))
    viewport = support.page.viewport_size
    assert viewport is not None
    assert log["height"] >= 0.4 * viewport["height"], f"the chat is squeezed to {log['height']:.0f} px"
    assert (await box(form))["y"] >= log["y"] + log["height"] - 1  # the step sits under the transcript
    number = await box(form.locator("input[name='difficulty']"))
    notes = await box(form.locator("textarea[name='notes']").locator("xpath=.."))
    assert number["y"] + number["height"] <= notes["y"] + 1, "the number box runs into the next label"
    assert await visible_send_controls(support.page) == 1
    send = support.page.locator("#send-button")
    await send.scroll_into_view_if_needed()
    assert await in_view(support.page, send)
    assert support.page_errors == []


async def test_labels_are_sent_with_one_control_and_shown_once_under_their_message(
    ui_live: LiveServer, browser: Browser
) -> None:
    page = await open_worker(browser, ui_live, "annotate", "W-once", width=1280)
    await page.say("I just adopted a dog.")
    await page.wait_turn()
    bot = page.messages(mine=False).last
    inline = bot.locator(".annotation")
    await expect(inline).to_be_visible()
    assert await visible_send_controls(page.page) == 1
    send = inline.locator(".annotation-send")
    assert inside(await box(send), await box(bot)), "the Send labels button is clipped by its message"
    assert inside(await box(send), await box(page.page.locator("#chat-log")))

    await inline.locator("input[value='Engaging']").check()
    await inline.locator("input[value='Off-topic']").check()
    await send.click()
    result = bot.locator(".annotation-result")
    await expect(result).to_have_attribute("data-status", "stored")
    await expect(result.locator(".annotation-value")).to_have_text("Engaging, Off-topic")
    shown = await page.page.evaluate("() => document.body.innerText.split('Engaging, Off-topic').length - 1")
    assert shown == 1, f"the labels are shown {shown} times"

    await page.page.reload()
    await page.expect_body("data-synced", "true")
    await expect(page.page.locator(".annotation-result .annotation-value")).to_have_text("Engaging, Off-topic")
    shown = await page.page.evaluate("() => document.body.innerText.split('Engaging, Off-topic').length - 1")
    assert shown == 1
    assert page.page_errors == []


async def pass_the_qualification(page: WorkerPage) -> None:
    for gold in ("Engaging", "Rude", "Contradictory", "Off-topic"):
        await page.wait_turn()
        await page.tick([gold])
        await page.send()


async def test_a_qualification_ends_with_its_result_and_its_sample_chat_set_apart(
    ui_live: LiveServer, browser: Browser
) -> None:
    page = await open_worker(browser, ui_live, "annotate_onboarded", "W-qualify", width=1280)
    await pass_the_qualification(page)
    await expect(page.page.locator("#turn-prompt")).to_contain_text("Your message (1 of 1)", timeout=15_000)

    for _ in range(2):  # as it happened, then rebuilt from the replayed stream after a reload
        result = page.page.locator("#chat-log > .step-result")
        await expect(result).to_be_visible()
        await expect(result).to_contain_text("You passed the qualification")
        past = page.page.locator("#chat-log > details.past-step")
        await expect(past).to_have_count(1)
        await expect(past.locator("summary")).to_contain_text("Qualification")
        assert await past.get_attribute("open") is None  # folded away
        await expect(past.locator(".message", has_text="Beagles are the worst dogs")).to_have_count(1)
        await expect(page.page.locator("#chat-log > .message")).to_have_count(0)  # the real chat starts empty
        await page.page.reload()
        await page.expect_body("data-synced", "true")
        await page.wait_turn()
    await page.say("Hello bot")
    await expect(page.page.locator("#chat-log > .message.mine")).to_have_count(1)
    await expect(page.page.locator("#chat-log > .message.mine .sender")).to_have_text("You")
    assert page.page_errors == []


async def test_the_pairwise_question_is_shown_once(ui_live: LiveServer, browser: Browser) -> None:
    page = await open_worker(browser, ui_live, "pairs", "W-question", width=1280)
    await page.wait_turn()
    await expect(page.page.locator("#context-pane .conversation")).to_have_count(2)
    shown = await page.page.evaluate("q => document.body.innerText.split(q).length - 1", QUESTION)
    assert shown == 1, f"the question is shown {shown} times"
    assert page.page_errors == []
