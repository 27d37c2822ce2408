"""Three Parley instances behind Caddy, real Chromium workers on the built-in sandbox's worker site.

Two pairs of workers accept the run's HITs through the load balancer and are paired; each pair's two sockets
are on two different instances (a socket that shares its partner's instance is dropped and reconnects, and
Caddy's round-robin puts it elsewhere). Every worker speaks once, then the instance that owns the run is
SIGKILLed mid-conversation. Another instance takes the run over, the pages reconnect through Caddy and
resume, and each conversation continues to its end (its world replayed on the new owner); every worker
submits to the sandbox. Every message a page showed as sent (stored) is in the database exactly once, with its text.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Frame, Page, expect

from server.store import Store
from tests.browser.worker_page import SOCKET_HOOK
from tests.hits.harness import mturk
from tests.support.cluster import Cluster

pytestmark = pytest.mark.browser

RUNS = {"chat": "tests.multi.tasks:cluster_chat"}
ENV = {"PARLEY_MTURK_SYNC_S": "1", "PARLEY_HEARTBEAT_S": "5"}
WORKERS = ["ACLUSTERA1", "ACLUSTERA2", "ACLUSTERB1", "ACLUSTERB2"]
WAIT_MS = 60_000


class Worker:
    """One worker's tab on the worker site, through the load balancer, and its task frame."""

    def __init__(self, worker_id: str, page: Page) -> None:
        self.worker_id = worker_id
        self.page = page
        self.task = page.frame_locator("#task-frame")
        self.said = 0

    @property
    def body(self):  # type: ignore[no-untyped-def]
        return self.task.locator("body")

    def frame(self) -> Frame:
        for frame in self.page.frames:
            if "/task/" in frame.url:
                return frame
        raise AssertionError(f"{self.worker_id}: no task frame in {[f.url for f in self.page.frames]}")

    async def describe(self) -> str:
        """What the task frame shows, for an assertion message."""
        try:
            frame = self.frame()
            text = await frame.evaluate("() => document.body ? document.body.innerText.slice(0, 600) : ''")
            return f"{self.worker_id}'s task frame at {frame.url} shows {text!r}"
        except Exception as error:  # the frame may be gone or not loaded: say so rather than hide the first error
            return f"{self.worker_id}: could not read the task frame ({error})"

    async def state(self) -> str:
        return await self.body.get_attribute("data-state", timeout=WAIT_MS) or ""

    async def drop_socket(self) -> None:
        """Close the page's live socket as a network failure would; the page reconnects through Caddy."""
        await self.frame().evaluate(
            "() => { const ws = window.__parleySockets.at(-1); if (ws) ws.close(4000, 'test drop'); }"
        )

    async def say_next(self) -> None:
        self.said += 1
        text = f"{self.worker_id} says line {self.said}"
        mine = self.task.locator("#chat-log .message.mine")
        before = await mine.count()
        await self.task.locator("#chat-input").fill(text)
        await self.task.locator("#send-button").click()
        await expect(mine).to_have_count(before + 1, timeout=WAIT_MS)

    async def answer_survey(self) -> None:
        await self.task.locator("#widget [data-field='enjoyed'] button[data-value='4']").click()
        await self.task.locator("#widget [data-field='partner_engaged'] input[value='Yes']").check()
        await self.task.locator("#send-button").click()

    async def shown_as_stored(self) -> dict[str, str]:
        """client id -> text of every own message the page shows as stored (acked by the server)."""
        pairs = await self.task.locator("#chat-log .message.mine[data-status='stored']").evaluate_all(
            "nodes => nodes.map(n => [n.dataset.clientId || '', n.querySelector('.text')?.textContent ?? ''])"
        )
        return {client_id: text for client_id, text in pairs if client_id}


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(data_dir=tmp_path, db_url=pg_url, runs=RUNS, size=3, lease_s=3.0, **ENV) as started:
        yield started


async def _accept(browser: Browser, cluster: Cluster, worker_id: str) -> Worker:
    context = await browser.new_context(viewport={"width": 1200, "height": 1000})
    page = await context.new_page()
    await page.add_init_script(SOCKET_HOOK)  # runs in the task frame too: a test can drop its socket
    await page.goto(f"{cluster.url}/sandbox/worker")
    await page.fill("#worker-id", worker_id)
    await page.click("#use-worker")
    accept = page.locator("li[data-hit-id] .accept").first
    await expect(accept).to_be_enabled(timeout=WAIT_MS)
    await accept.click()
    worker = Worker(worker_id, page)
    try:
        await expect(worker.body).to_have_attribute("data-connection", "connected", timeout=WAIT_MS)
    except AssertionError as error:
        raise AssertionError(f"the task page never connected through the load balancer: {await worker.describe()}"
                             f"\n{error}") from None
    return worker


async def _sockets(cluster: Cluster, total: int) -> dict[int, int]:
    """Sockets per instance once `total` are open (Caddy's open requests, pages idle)."""

    async def settled() -> dict[int, int] | None:
        counts = await asyncio.to_thread(cluster.open_requests)
        return counts if sum(counts.values()) == total else None

    found: dict[int, int] = await cluster.eventually(settled, f"{total} sockets open through Caddy")
    return found


async def _pair_across_instances(cluster: Cluster, pair: tuple[Worker, Worker], others: dict[int, int]) -> None:
    """Make the pair's two sockets sit on two instances: while they share one, the second reconnects."""
    open_before = sum(others.values())
    for _attempt in range(12):
        counts = await _sockets(cluster, open_before + 2)
        mine = {i: counts[i] - others.get(i, 0) for i in counts}
        if sorted(n for n in mine.values() if n) == [1, 1]:
            return
        await pair[1].drop_socket()
        await expect(pair[1].body).not_to_have_attribute("data-connection", "connected", timeout=WAIT_MS)
        await expect(pair[1].body).to_have_attribute("data-connection", "connected", timeout=WAIT_MS)
    raise AssertionError(f"the pair's sockets stayed on one instance: {mine}")


async def _whose_turn(pair: tuple[Worker, Worker]) -> tuple[Worker, Worker]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for me, partner in (pair, pair[::-1]):
            if await me.body.get_attribute("data-turn") == "open":
                return me, partner
        await asyncio.sleep(0.1)  # one of the two pages will open its turn: poll both, bounded
    raise AssertionError(f"neither page got a turn: {await pair[0].describe()} / {await pair[1].describe()}")


async def _drive_to_a_way_to_submit(worker: Worker) -> None:
    """Take every turn the page offers (chat lines, then the survey) until it shows the submit button."""
    submit = worker.task.locator("#submit-button")
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        if await submit.is_visible():
            return
        connected = await worker.body.get_attribute("data-connection") == "connected"
        if connected and await worker.body.get_attribute("data-turn") == "open":
            if await worker.task.locator("#widget [data-field='enjoyed']").is_visible():
                await worker.answer_survey()
            else:
                await worker.say_next()
        await asyncio.sleep(0.2)  # the partner's turn, or a reconnect under way: look again, bounded
    raise AssertionError(f"no way to submit after 150 s: {await worker.describe()}")


async def _stored_messages(pg_url: str) -> tuple[Counter[tuple[str, str]], list[str]]:
    """(client id, text) -> how many times the database holds it, for every worker message of the run; and
    the states of the run's conversations."""
    store = Store(pg_url)
    await store.open()
    try:
        found: Counter[tuple[str, str]] = Counter()
        conversations = await store.conversations("chat")
        for conversation in conversations:
            for message in await store.messages(conversation.id):
                if message.client_id:
                    found[(message.client_id, message.text)] += 1
        return found, [c.state for c in conversations]
    finally:
        await store.close()


async def test_workers_on_different_instances_chat_and_survive_the_owner_being_killed(
    cluster: Cluster, browser: Browser, pg_url: str
) -> None:
    owner = await cluster.wait_owner("chat")
    # The owner publishes the run's HITs on the sandbox; the worker site lists them through any instance.
    requester = mturk(f"{cluster.url}/sandbox/mturk")
    await cluster.eventually(
        lambda: asyncio.to_thread(lambda: len(requester.list_hits()["HITs"]) >= len(WORKERS)),
        f"{len(WORKERS)} HITs of run chat on the sandbox",
    )

    first = (await _accept(browser, cluster, WORKERS[0]), await _accept(browser, cluster, WORKERS[1]))
    for worker in first:
        await expect(worker.body).to_have_attribute("data-state", "in_task", timeout=WAIT_MS)
    await _pair_across_instances(cluster, first, {})
    before_second = await _sockets(cluster, 2)
    second = (await _accept(browser, cluster, WORKERS[2]), await _accept(browser, cluster, WORKERS[3]))
    for worker in second:
        await expect(worker.body).to_have_attribute("data-state", "in_task", timeout=WAIT_MS)
    await _pair_across_instances(cluster, second, before_second)
    sockets = await _sockets(cluster, 4)
    assert sum(1 for n in sockets.values() if n) >= 2, f"every socket on one instance: {sockets}"

    # Each worker speaks once; the partner sees it.
    for pair in (first, second):
        speaker, listener = await _whose_turn(pair)
        await speaker.say_next()
        await expect(listener.task.locator("#chat-log .message.theirs").last).to_contain_text(
            f"{speaker.worker_id} says line 1", timeout=WAIT_MS
        )
        await listener.say_next()
        await expect(speaker.task.locator("#chat-log .message.theirs").last).to_contain_text(
            f"{listener.worker_id} says line 1", timeout=WAIT_MS
        )

    # The run's owner dies mid-conversation. Another instance takes the lease; the pages reconnect through
    # Caddy and carry on to the conversation's end.
    cluster.kill(owner)
    new_owner = await cluster.wait_owner("chat", among=cluster.live, timeout=60)
    assert new_owner != owner
    everyone = [*first, *second]
    await asyncio.gather(*(_drive_to_a_way_to_submit(worker) for worker in everyone))

    # What each page shows as sent and stored, read before submitting (the form post navigates the frame away).
    shown = {worker.worker_id: await worker.shown_as_stored() for worker in everyone}
    for worker in everyone:
        await worker.task.locator("#submit-button").click()
        await expect(worker.page.locator("#notice")).to_contain_text("Submitted assignment", timeout=WAIT_MS)
    submitted = []
    for hit in requester.list_hits()["HITs"]:
        found = requester.list_assignments_for_hit(HITId=hit["HITId"], AssignmentStatuses=["Submitted"])
        submitted += [a["WorkerId"] for a in found["Assignments"]]
    assert sorted(submitted) == sorted(WORKERS)

    # Nothing acked was lost or stored twice: what each page showed as sent is in the database once, as shown.
    stored, states = await _stored_messages(pg_url)
    assert states == ["completed", "completed"]  # continued after the takeover, not closed
    for worker_id, messages in shown.items():
        assert len(messages) >= 1, f"{worker_id} shows no stored message of its own"
        for client_id, text in messages.items():
            assert stored[(client_id, text)] == 1, (worker_id, client_id, text, stored)
