"""Task-specific UI on the worker page, in real Chromium against a real server (tests/browser/tasks.py):
a form fragment per role, two conversations side by side, and annotation checkboxes under the bot message
they label. Every answer is checked where it ends up: the world's saved record."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Locator, expect

from server.store import Store
from tests.browser.tasks import XSS
from tests.browser.worker_page import WorkerPage, task_url
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def open_worker(browser: Browser, live: LiveServer, run_id: str, worker: str, *, width: int = 1000) -> WorkerPage:
    url = task_url(live.base, run_id, worker_id=worker, assignment_id=f"A-{worker}", turk_submit_to=live.base)
    page = await WorkerPage.open(browser, url, width=width)
    await page.expect_body("data-connection", "connected")
    return page


async def saved_record(store: Store, page: WorkerPage) -> dict[str, Any]:
    [agent_id] = {frame["agent_id"] for frame in page.received if frame["type"] == "welcome"}
    agent = await store.get_agent(agent_id)
    assert agent is not None and agent.conversation_id
    record = await store.world_data(agent.conversation_id)
    assert record is not None, "the world saved nothing"
    return record


async def box(locator: Locator) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found is not None, f"{locator} is not laid out"
    return found


# ---- a form fragment per role -------------------------------------------------------------------


async def test_each_role_gets_its_own_fragment_and_its_answers_reach_the_saved_record(
    ui_live: LiveServer, browser: Browser, store: Store
) -> None:
    one = await open_worker(browser, ui_live, "survey", "W1")
    two = await open_worker(browser, ui_live, "survey", "W2")
    await expect(one.page.locator("#context-text")).to_contain_text("You are the", timeout=15_000)
    customer, support = (
        (one, two) if "customer" in (await one.page.locator("#context-text").text_content() or "") else (two, one)
    )
    await customer.say("My kettle arrived with a cracked lid.")
    await support.say("Sorry about that! A new one is on its way.")

    for page in (customer, support):
        await page.wait_turn()
    mine = customer.page.locator("#widget .fragment[data-role='Customer'][data-state='ready']")
    theirs = support.page.locator("#widget .fragment[data-role='Support'][data-state='ready']")
    await expect(mine).to_be_visible()
    await expect(theirs).to_be_visible()
    # Different fragments: each page holds only its own role's fields.
    await expect(mine.locator("input[name='satisfaction']")).to_have_count(5)
    await expect(customer.page.locator("input[name='difficulty']")).to_have_count(0)
    await expect(theirs.locator("input[name='difficulty']")).to_have_count(1)
    await expect(support.page.locator("input[name='satisfaction']")).to_have_count(0)
    # The customer's stylesheet (served beside its fragment) applies; the fragment's <form> became a box.
    await expect(mine.locator(".scale")).to_have_css("display", "flex")
    await expect(customer.page.locator("#widget form")).to_have_count(0)
    await expect(customer.page.locator("#send-button")).to_be_disabled()  # required fields still empty

    await mine.locator("input[name='satisfaction'][value='4']").check()
    await mine.locator("input[name='did_well'][value='polite']").check()
    await mine.locator("input[name='did_well'][value='solution']").check()
    await mine.locator("input[name='again'][value='yes']").check()
    await mine.locator("textarea[name='comment']").fill("Quick <b>help</b>")
    await customer.send()
    await theirs.locator("input[name='clear'][value='partly']").check()
    await theirs.locator("input[name='offered'][value='apology']").check()
    await expect(support.page.locator("#send-button")).to_be_disabled()  # difficulty is required
    await theirs.locator("input[name='difficulty']").fill("3")
    await support.send()

    customer_answers = {"satisfaction": "4", "did_well": ["polite", "solution"], "again": "yes",
                        "comment": "Quick <b>help</b>"}
    support_answers = {"clear": "partly", "offered": ["apology"], "difficulty": 3, "notes": ""}
    assert customer.said()[-1]["data"] == {"form": customer_answers}
    assert support.said()[-1]["data"] == {"form": support_answers}
    for page in (customer, support):
        await page.expect_body("data-state", "done", timeout=15_000)
        assert page.page_errors == []
    record = await saved_record(store, customer)
    assert record["surveys"] == {"Customer": customer_answers, "Support": support_answers}
    await expect(customer.page.locator("#chat-log b")).to_have_count(0)  # the summary bubble is text


async def test_the_page_keeps_only_safe_elements_and_attributes_of_a_fragment(
    ui_live: LiveServer, browser: Browser
) -> None:
    page = await WorkerPage.open(browser, task_url(ui_live.base, "survey"))
    await page.expect_body("data-phase", "preview")
    cleaned = await page.page.evaluate("""async () => {
        const { sanitize } = await import("/static/fragments.js");
        const template = sanitize(`<p id="q" onclick="window.__owned=1">Hi <b>there</b></p>
            <img src="https://evil.example/x.png" onerror="window.__owned=1"><script>window.__owned=1</script>
            <form action="https://evil.example/" method="post"><label for="q">Q</label><input name="a" required>
            <input type="file" name="f"><button>Go</button><marquee>moving</marquee></form>
            <a href="javascript:window.__owned=1">link</a><iframe src="/"></iframe>`);
        document.body.append(template.content.cloneNode(true));
        return template.innerHTML;
    }""")
    assert "onclick" not in cleaned and "onerror" not in cleaned and "<script" not in cleaned
    assert "<iframe" not in cleaned and "<button" not in cleaned and "type=\"file\"" not in cleaned
    assert "<form" not in cleaned and "evil.example" not in cleaned and "javascript:" not in cleaned
    assert '<div data-parley-form="">' in cleaned and '<input name="a" required="">' in cleaned
    assert '<p id="ui-q">Hi <b>there</b></p>' in cleaned and '<label for="ui-q">' in cleaned
    assert "moving" in cleaned and "<marquee" not in cleaned  # unknown elements are unwrapped
    assert await page.page.evaluate("() => window.__owned") is None


# ---- two conversations side by side ---------------------------------------------------------------


async def test_pairwise_conversations_are_side_by_side_as_literal_text_and_stack_when_narrow(
    ui_live: LiveServer, browser: Browser, store: Store
) -> None:
    page = await open_worker(browser, ui_live, "pairs", "W-pairs", width=1100)
    await page.wait_turn()
    pane = page.page.locator("#context-pane")
    a, b = pane.locator(".conversation[data-side='A']"), pane.locator(".conversation[data-side='B']")
    await expect(a.locator("h3")).to_have_text("Conversation A")
    await expect(b.locator("h3")).to_have_text("Conversation B")
    await expect(pane.locator(".pair-heading")).to_have_text("Pair 1 of 1")

    box_a, box_b = await box(a), await box(b)
    assert abs(box_a["y"] - box_b["y"]) < 1 and box_a["x"] + box_a["width"] <= box_b["x"]
    assert box_a["width"] >= 200 and box_b["width"] >= 200

    sides = {}
    for side, column in (("A", a), ("B", b)):
        turns = column.locator(".turn")
        speakers = await turns.locator(".speaker").all_text_contents()
        sides[side] = (speakers, await turns.locator(".text").all_text_contents())
    assert sides["A"][0] == sides["B"][0] == ["Human", "Bot"]  # each turn keeps its speaker label
    texts = {t for _, ts in sides.values() for t in ts}
    assert XSS in texts and "Fine, thanks. I just read a book about <b>lighthouses</b>." in texts
    await expect(pane.locator("img, script, b")).to_have_count(0)
    assert await page.page.evaluate("() => window.__owned") is None

    await page.page.set_viewport_size({"width": 480, "height": 800})  # a phone: one column
    await expect(a).to_be_visible()
    box_a, box_b = await box(a), await box(b)
    assert box_b["y"] >= box_a["y"] + box_a["height"] and abs(box_a["x"] - box_b["x"]) < 1

    sneaky = "A" if XSS in sides["A"][1] else "B"
    plain = "B" if sneaky == "A" else "A"
    await page.choose(f"Conversation {plain}", field="choice")
    await page.fill_field("reason", "It answered the question.")
    await page.send()
    await page.expect_body("data-state", "done", timeout=15_000)
    record = await saved_record(store, page)
    [result] = record["results"]
    assert (result["choice"], result["winner"], result["loser"]) == (plain, "plain", "sneaky")
    assert page.page_errors == []


# ---- annotation checkboxes under the bot message ----------------------------------------------------


async def label(page: WorkerPage, labels: list[str]) -> str:
    """Wait for the label turn; check that it sits under the latest bot message; tick and send. The id."""
    await page.wait_turn()
    bot = page.messages(mine=False).last
    message_id = await bot.get_attribute("data-message-id")
    assert message_id
    inline = bot.locator(f".annotation[data-annotates='{message_id}'] [data-widget-kind='checkboxes']")
    await expect(inline).to_be_visible()
    await expect(page.page.locator("#widget [data-widget-kind='checkboxes']")).to_have_count(0)
    bot_box, inline_box = await box(bot), await box(inline)
    bottom = bot_box["y"] + bot_box["height"]
    assert bot_box["y"] <= inline_box["y"] and inline_box["y"] + inline_box["height"] <= bottom
    for option in labels:
        await inline.locator(f"input[value='{option}']").check()
    await bot.locator(".annotation-send").click()
    # Shown once, under the message it labels (not also as a bubble of its own).
    await expect(bot.locator(".annotation-result")).to_be_visible()
    return message_id


async def test_annotation_checkboxes_sit_under_the_bot_message_and_the_labels_stay_there(
    ui_live: LiveServer, browser: Browser, store: Store
) -> None:
    page = await open_worker(browser, ui_live, "annotate", "W-labels")
    await page.say("I just adopted a dog.")
    first = await label(page, ["Engaging", "Off-topic"])
    await page.say("She loves long walks.")
    second = await label(page, [])

    results = page.page.locator("#chat-log .message .annotation-result")
    await expect(results).to_have_count(2)
    for message_id, text in ((first, "Engaging, Off-topic"), (second, "(none selected)")):
        result = page.page.locator(f".message[data-message-id='{message_id}'] .annotation-result")
        await expect(result.locator(".annotation-value")).to_have_text(text)
        await expect(result).to_have_attribute("data-status", "stored")
    await expect(page.page.locator("#chat-log .annotation")).to_have_count(0)  # no boxes left open
    sent = [frame["data"] for frame in page.said() if "checkboxes" in frame["data"]]
    assert sent == [{"checkboxes": ["Engaging", "Off-topic"], "message_id": first},
                    {"checkboxes": [], "message_id": second}]

    await page.wait_turn()
    await page.rate(4, field="rating")
    await page.fill_field("reason", "Friendly.")
    await page.send()
    await page.expect_body("data-state", "done", timeout=15_000)
    record = await saved_record(store, page)
    assert record["annotations"] == {first: ["Engaging", "Off-topic"], second: []}
    bots = [d for d in record["dialogue"] if d["speaker"] == "Bot"]
    assert [d["id"] for d in bots] == [first, second]

    await page.page.reload()  # the labels come back under their messages from the replayed stream
    await page.expect_body("data-synced", "true")
    await expect(page.page.locator(f".message[data-message-id='{first}'] .annotation-value")).to_have_text(
        "Engaging, Off-topic"
    )
    assert page.page_errors == []
