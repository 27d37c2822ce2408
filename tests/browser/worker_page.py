"""Drive the worker page in real Chromium: launch it, open the page as a worker, act, and read its state.

The page exposes its state for tests without test-only code paths: body[data-phase|state|connection|turn|
synced|stopped|submitted|refusal], chat items with data-seq / data-status, and stable element ids.
Outgoing frames are recorded from Playwright's websocket events; `drop_socket()` closes the page's live
socket through a small init script that remembers the sockets the page opens.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from playwright.async_api import Browser, Page, WebSocket, async_playwright, expect

from tests.browser_setup import system_chromium

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"

# Remember every socket the page opens, so a test can drop the live one as a network failure would.
SOCKET_HOOK = """
(() => {
  const Native = window.WebSocket;
  window.__parleySockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__parleySockets.push(this); }
  };
})();
"""

Frame = dict[str, Any]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        # Debian's Chromium (or PARLEY_CHROMIUM); else Playwright's own build, if tests.browser_setup fetched it.
        browser = await pw.chromium.launch(executable_path=system_chromium(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def task_url(
    base: str, run_id: str, *, worker_id: str = "", assignment_id: str = PREVIEW, hit_id: str = "HIT1",
    turk_submit_to: str = "",
) -> str:
    query = {"assignmentId": assignment_id, "hitId": hit_id}
    if assignment_id != PREVIEW:
        query |= {"workerId": worker_id, "turkSubmitTo": turk_submit_to}
    return f"{base}/task/{run_id}?{urlencode(query)}"


class WorkerPage:
    """One worker's tab: `sent` / `received` hold every websocket frame, `page_errors` every uncaught error."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.sent: list[Frame] = []
        self.received: list[Frame] = []
        self.page_errors: list[str] = []
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("websocket", self._record)

    @classmethod
    async def open(
        cls, browser: Browser, url: str, *, width: int = 1000, height: int = 800, beside: WorkerPage | None = None
    ) -> WorkerPage:
        """A tab of its own browser (its own storage), or, `beside` another page, a tab of the same browser."""
        if beside is not None:
            context = beside.page.context
        else:
            context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.add_init_script(SOCKET_HOOK)
        worker = cls(page, url)
        await page.goto(url)
        return worker

    def _record(self, ws: WebSocket) -> None:
        def on_sent(payload: str | bytes) -> None:
            if isinstance(payload, str):
                self.sent.append(json.loads(payload))

        def on_received(payload: str | bytes) -> None:
            if isinstance(payload, str):
                self.received.append(json.loads(payload))

        ws.on("framesent", on_sent)
        ws.on("framereceived", on_received)

    # ---- reading the page ----

    @property
    def body(self):  # type: ignore[no-untyped-def]
        return self.page.locator("body")

    async def expect_body(self, attribute: str, value: str, timeout: float = 10_000) -> None:
        await expect(self.body).to_have_attribute(attribute, value, timeout=timeout)

    async def status(self) -> str:
        return await self.page.locator("#status-text").text_content() or ""

    async def seqs(self) -> list[int]:
        """The data-seq of every chat item, in page order."""
        return await self.page.locator("#chat-log [data-seq]").evaluate_all(
            "nodes => nodes.map(n => Number(n.dataset.seq))"
        )

    def messages(self, *, mine: bool | None = None):  # type: ignore[no-untyped-def]
        selector = "#chat-log .message" + ("" if mine is None else ".mine" if mine else ".theirs")
        return self.page.locator(selector)

    def said(self) -> list[Frame]:
        return [frame for frame in self.sent if frame.get("type") == "message"]

    # ---- acting ----

    async def wait_turn(self, timeout: float = 10_000) -> None:
        await self.expect_body("data-turn", "open", timeout)

    async def send(self) -> None:
        """Send the open widget's answer; returns once the page shows it (the next turn may already be open)."""
        mine = self.messages(mine=True)
        before = await mine.count()
        await expect(self.page.locator("#send-button")).to_be_enabled()
        await self.page.click("#send-button")
        await expect(mine).to_have_count(before + 1)

    async def say(self, text: str) -> None:
        await self.wait_turn()
        await self.page.fill("#chat-input", text)
        await self.send()

    async def rate(self, value: int, field: str | None = None) -> None:
        await self.page.click(f"{self._scope(field, 'rating')} button[data-value='{value}']")

    async def choose(self, option: str, field: str | None = None) -> None:
        await self.page.locator(f"{self._scope(field, 'choice')} input[value='{option}']").check()

    async def tick(self, options: list[str], field: str | None = None) -> None:
        for option in options:
            await self.page.locator(f"{self._scope(field, 'checkboxes')} input[value='{option}']").check()

    async def fill_field(self, field: str, text: str) -> None:
        await self.page.fill(f"#widget [data-field='{field}'] textarea", text)

    @staticmethod
    def _scope(field: str | None, kind: str) -> str:
        return f"#widget [data-field='{field}']" if field else f"#widget [data-widget-kind='{kind}']"

    async def drop_socket(self) -> None:
        """Close the page's live socket from the client side, as a network failure would."""
        await self.page.evaluate(
            "() => { const ws = window.__parleySockets.at(-1); if (ws) ws.close(4000, 'test drop'); }"
        )
