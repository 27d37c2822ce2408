"""The worker page in real Chromium against a real server (the `live` fixture, tests/support/tasks.py runs).

"gated": onboarding asks a choice (blue passes), then one free-text turn, then done.
"chat": two workers take 2 turns each, then both fill a survey form (rating, choice, optional comment).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
from playwright.async_api import Browser, Route, expect

from tests.browser.worker_page import SOCKET_HOOK, WorkerPage, task_url
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

async def state_texts(live: LiveServer, run_id: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=live.base) as client:
        info = (await client.get(f"/task/{run_id}/info")).json()
    return {name: meta["text"] for name, meta in info["states"].items()}


async def open_worker(
    browser: Browser, live: LiveServer, run_id: str, worker: str, assignment: str, *, beside: WorkerPage | None = None
) -> WorkerPage:
    # turkSubmitTo is the server itself: the task page's CSP allows form posts only there and to MTurk.
    url = task_url(live.base, run_id, worker_id=worker, assignment_id=assignment, turk_submit_to=live.base)
    page = await WorkerPage.open(browser, url, beside=beside)
    await page.expect_body("data-connection", "connected")
    return page


async def first_to_speak(a: WorkerPage, b: WorkerPage) -> tuple[WorkerPage, WorkerPage]:
    waits = {asyncio.create_task(a.wait_turn()): (a, b), asyncio.create_task(b.wait_turn()): (b, a)}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    winner = done.pop()
    winner.result()
    return waits[winner]


async def test_preview_shows_the_task_and_never_joins(live: LiveServer, browser: Browser) -> None:
    page = await WorkerPage.open(browser, task_url(live.base, "chat"))

    await page.expect_body("data-phase", "preview")
    assert await page.status() == "Accept the HIT to start."
    await expect(page.page.locator("#task-reward")).to_have_text("Reward: $0.50")
    await expect(page.page.locator("#chat-input")).to_be_disabled()
    await expect(page.page.locator("#send-button")).to_be_disabled()
    assert page.sent == []
    assert page.page_errors == []


async def test_onboarding_then_text_turn_then_submit_posts_the_mturk_form(
    live: LiveServer, browser: Browser
) -> None:
    page = await open_worker(browser, live, "gated", "W1", "A1")
    posted: list[dict[str, list[str]]] = []

    async def external_submit(route: Route) -> None:
        posted.append(parse_qs(route.request.post_data or ""))
        await route.fulfill(status=200, content_type="text/html", body="<p>MTurk got it</p>")

    await page.page.route(f"{live.base}/mturk/externalSubmit", external_submit)

    await page.wait_turn()
    await page.choose("blue")
    await page.send()
    assert page.said()[-1]["data"] == {"choice": "blue"}
    await page.say("Hello <b>there</b>")
    assert page.said()[-1]["data"] == {}

    await page.expect_body("data-state", "done")
    await expect(page.page.locator("#chat-input")).to_be_disabled()
    async with page.page.expect_navigation(url=f"{live.base}/mturk/externalSubmit"):
        await page.page.click("#submit-button")

    assert posted == [{"assignmentId": ["A1"], "summary": ["messages_sent=2; state=done"]}]
    assert {"type": "submit"} in page.sent
    assert page.page_errors == []


async def test_failed_onboarding_shows_its_text_and_the_next_assignment_is_refused(
    live: LiveServer, browser: Browser
) -> None:
    texts = await state_texts(live, "gated")
    page = await open_worker(browser, live, "gated", "W1", "A1")
    await page.wait_turn()
    await page.choose("green")
    await page.send()
    await page.expect_body("data-state", "onboarding_failed")
    assert await page.status() == texts["onboarding_failed"]

    again = await WorkerPage.open(
        browser, task_url(live.base, "gated", worker_id="W1", assignment_id="A2", turk_submit_to=live.base)
    )
    await again.expect_body("data-phase", "refused")
    await again.expect_body("data-refusal", "onboarding_failed")
    assert "Please return this HIT" in await again.status()
    await expect(again.page.locator("#chat-input")).to_be_disabled()
    assert again.sent == []


async def test_two_workers_chat_and_every_message_shows_once_as_text(live: LiveServer, browser: Browser) -> None:
    one = await open_worker(browser, live, "chat", "W1", "A1")
    two = await open_worker(browser, live, "chat", "W2", "A2")
    speaker, listener = await first_to_speak(one, two)

    for i in range(4):
        await speaker.say(f"message {i} <i>not markup</i>")
        await expect(listener.messages(mine=False).last).to_contain_text(f"message {i} <i>not markup</i>")
        speaker, listener = listener, speaker

    for page in (one, two):
        await page.wait_turn()
        await page.rate(4, field="enjoyed")
        await page.choose("Yes", field="partner_engaged")
        await page.send()
        assert page.said()[-1]["data"] == {"form": {"enjoyed": 4, "partner_engaged": "Yes", "comment": ""}}
    for page in (one, two):
        await page.expect_body("data-state", "done")
        await expect(page.page.locator("#submit-button")).to_be_visible()
        seqs = await page.seqs()
        assert seqs == sorted(set(seqs))
        await expect(page.messages(mine=True)).to_have_count(3)  # two chat turns and the survey summary
        await expect(page.messages(mine=False)).to_have_count(2)
        assert await page.page.locator("#chat-log i").count() == 0
        assert page.page_errors == []


async def test_a_dropped_socket_resumes_from_the_last_seq_without_duplicates(
    live: LiveServer, browser: Browser
) -> None:
    one = await open_worker(browser, live, "chat", "W1", "A1")
    two = await open_worker(browser, live, "chat", "W2", "A2")
    speaker, listener = await first_to_speak(one, two)
    await speaker.say("before the drop")
    await expect(listener.messages(mine=False)).to_have_count(1)
    seen = max(await listener.seqs())

    await listener.drop_socket()
    await listener.expect_body("data-connection", "reconnecting")
    await listener.expect_body("data-connection", "connected")
    await listener.say("after the drop")
    await expect(speaker.messages(mine=False).last.locator(".text")).to_have_text("after the drop")

    hellos = [frame for frame in listener.sent if frame["type"] == "hello"]
    assert len(hellos) == 2 and hellos[1]["last_seq"] >= seen
    seqs = await listener.seqs()
    assert seqs == sorted(set(seqs))
    await expect(listener.messages(mine=True)).to_have_count(1)
    said = [frame for frame in listener.said() if frame["text"] == "after the drop"]
    assert len({frame["client_id"] for frame in said}) == 1


async def test_a_second_tab_takes_over_and_the_first_stops_without_retrying(
    live: LiveServer, browser: Browser
) -> None:
    first = await open_worker(browser, live, "gated", "W1", "A1")
    second = await open_worker(browser, live, "gated", "W1", "A1", beside=first)  # same browser: same key

    await first.expect_body("data-stopped", "4409")
    await first.expect_body("data-connection", "offline")
    await expect(first.page.locator("#chat-input")).to_be_disabled()
    await second.expect_body("data-synced", "true")
    await second.wait_turn()  # the replay gives the open onboarding turn to the new tab
    assert [f["type"] for f in first.sent].count("hello") == 1


async def test_the_page_stops_on_the_close_codes_the_server_names_with_the_servers_words(
    live: LiveServer, browser: Browser
) -> None:
    """The close codes and what the page says for each come from TaskInfo (server/close_codes.py), not from a
    table of the page's own: a text changed on the server's side is what the worker reads."""
    said = "The server says: you opened this task in another window; carry on there."
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    tab = await context.new_page()
    await tab.add_init_script(SOCKET_HOOK)

    async def reworded(route: Route) -> None:
        response = await route.fetch()
        info = await response.json()
        info["close_codes"]["replaced"]["text"] = said
        await route.fulfill(response=response, json=info)

    await tab.route("**/task/gated/info", reworded)
    url = task_url(live.base, "gated", worker_id="W1", assignment_id="A1", turk_submit_to=live.base)
    first = WorkerPage(tab, url)
    await tab.goto(url)
    await first.expect_body("data-connection", "connected")
    await open_worker(browser, live, "gated", "W1", "A1", beside=first)  # same browser: it takes over

    await first.expect_body("data-stopped", "4409")
    await expect(tab.locator("#status-text")).to_have_text(said)
    await context.close()


async def test_a_turn_sent_again_after_a_reconnect_keeps_what_the_worker_typed(
    live: LiveServer, browser: Browser
) -> None:
    one = await open_worker(browser, live, "chat", "W1", "A1")
    two = await open_worker(browser, live, "chat", "W2", "A2")
    speaker, listener = await first_to_speak(one, two)
    await speaker.page.fill("#chat-input", "half a thought")
    turn = [f for f in speaker.received if f["type"] == "turn"][-1]

    await speaker.drop_socket()
    await speaker.expect_body("data-connection", "reconnecting")
    await speaker.expect_body("data-connection", "connected")
    # Playwright's frame events have no awaitable form: a bounded poll for the turn sent after the replay.
    for _ in range(100):
        if sum(1 for f in speaker.received if f.get("turn_id") == turn["turn_id"]) == 2:
            break
        await asyncio.sleep(0.05)
    assert sum(1 for f in speaker.received if f.get("turn_id") == turn["turn_id"]) == 2

    await expect(speaker.page.locator("#chat-input")).to_have_value("half a thought")
    await speaker.send()
    await expect(listener.messages(mine=False).last.locator(".text")).to_have_text("half a thought")
    assert speaker.page_errors == []


async def test_a_pasted_nul_is_dropped_from_what_the_page_sends_and_the_message_is_stored(
    live: LiveServer, browser: Browser
) -> None:
    worker = await open_worker(browser, live, "qa", "W-nul", "A-nul")
    await worker.wait_turn()
    await worker.page.fill("#chat-input", "a\u0000b?")
    await worker.send()
    await expect(worker.messages(mine=True).last.locator(".text")).to_have_text("ab?")
    assert [f["text"] for f in worker.said()] == ["ab?"]
    assert not [f for f in worker.received if f["type"] == "error"]
    assert worker.page_errors == []


async def test_a_message_the_server_refused_is_shown_and_not_resent_after_a_reconnect(
    live: LiveServer, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = await open_worker(browser, live, "qa", "W-refused", "A-refused")
    await worker.wait_turn()
    run = live.app.state.runs.get("qa")

    async def refuse(agent_id: str, frame: object, socket: object = None) -> None:
        raise RuntimeError("the store refused the write")

    monkeypatch.setattr(run, "receive", refuse)
    await worker.page.fill("#chat-input", "lost to a fault?")
    await worker.page.click("#send-button")
    await expect(worker.page.locator("#error-text")).to_contain_text("not saved")
    refused = [f for f in worker.received if f["type"] == "error" and f.get("code") == "internal"]
    assert len(refused) == 1 and refused[0]["client_id"]
    monkeypatch.undo()

    await worker.drop_socket()
    await worker.expect_body("data-connection", "reconnecting")
    await worker.expect_body("data-connection", "connected")
    await worker.say("a question?")  # the turn was given back, and works
    assert sum(1 for f in worker.sent if f.get("client_id") == refused[0]["client_id"]) == 1  # never resent
    assert worker.page_errors == []


async def test_a_reloaded_page_resumes_its_assignment_with_the_stream_it_had(
    live: LiveServer, browser: Browser
) -> None:
    one = await open_worker(browser, live, "chat", "W1", "A1")
    two = await open_worker(browser, live, "chat", "W2", "A2")
    speaker, listener = await first_to_speak(one, two)
    await speaker.say("before the reload")
    await expect(listener.messages(mine=False)).to_have_count(1)

    await listener.page.reload()
    await listener.expect_body("data-connection", "connected")
    await expect(listener.messages(mine=False).locator(".text")).to_have_text(["before the reload"])
    welcomes = [f for f in listener.received if f["type"] == "welcome"]
    assert len(welcomes) == 2 and welcomes[0]["agent_id"] == welcomes[1]["agent_id"]  # the same agent resumed
    assert listener.page_errors == []


async def test_the_same_assignment_opened_in_another_browser_is_refused_and_the_first_page_stays(
    live: LiveServer, browser: Browser
) -> None:
    first = await open_worker(browser, live, "gated", "W1", "A1")
    await first.wait_turn()
    url = task_url(live.base, "gated", worker_id="W1", assignment_id="A1", turk_submit_to=live.base)
    other = await WorkerPage.open(browser, url)  # its own storage: it does not hold the assignment's key

    await other.expect_body("data-refusal", "assignment_in_use")
    assert "Continue there" in await other.status()
    assert [f for f in other.sent if f["type"] == "hello"] == []  # it never got a token to connect with
    await first.expect_body("data-connection", "connected")
    assert first.page_errors == [] and other.page_errors == []
