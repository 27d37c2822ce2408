"""Rich task context in real Chromium: the picture task (worlds/picture_pick.py) worked through by two workers
(one describes a picture the other cannot see, the other picks it out of four), its pictures served
read-only from the task's assets under the page's CSP, and the preview showing what the task allows (the
four pictures; the QA task's paragraph)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from server.store import Store
from tests.browser.test_task_ui import open_worker, saved_record
from tests.browser.worker_page import WorkerPage, task_url
from tests.conftest import make_settings
from tests.support.server import LiveServer, serve
from worlds.base import jsonl_contexts
from worlds.picture_pick import CONTEXTS
from worlds.qa_data_collection import SAMPLE

pytestmark = pytest.mark.browser
BOUND_MS = 15_000
RUNS = {"pick": "worlds.picture_pick", "qa": "worlds.qa_data_collection"}


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(make_settings(db_url, tmp_path, RUNS)) as server:
        yield server


async def loaded_images(page: WorkerPage, where: str) -> list[str]:
    """The src of every picture in `where` that the browser actually decoded (naturalWidth > 0)."""
    images = page.page.locator(f"{where} figure.task-image img")
    await expect(images.first).to_be_visible(timeout=BOUND_MS)
    return await images.evaluate_all(
        "nodes => Promise.all(nodes.map(n => n.decode().then(() => n.naturalWidth > 0 ? n.src : '', () => '')))"
    )


async def test_two_workers_play_the_picture_task_and_the_guess_is_saved(
    live: LiveServer, browser: Browser, store: Store
) -> None:
    first = next(iter(jsonl_contexts(CONTEXTS)))  # conversation 0 gets the first context
    one = await open_worker(browser, live, "pick", "WPIC1")
    two = await open_worker(browser, live, "pick", "WPIC2")
    for page in (one, two):
        await expect(page.page.locator("#context-text figure")).not_to_have_count(0, timeout=BOUND_MS)
    describer, guesser = (one, two) if await one.page.locator("#context-text figure").count() == 1 else (two, one)

    shown = await loaded_images(describer, "#context-text")
    assert [src.rsplit("/", 1)[-1] for src in shown] == [first["target"]]
    assert all(src.startswith(f"{live.base}/task/pick/assets/") for src in shown)
    choices = await loaded_images(guesser, "#context-text")
    assert [src.rsplit("/", 1)[-1] for src in choices] == first["choices"]
    await expect(guesser.page.locator("#context-text figcaption")).to_have_text(
        ["Picture A", "Picture B", "Picture C", "Picture D"])
    assert first["target"] not in (await guesser.page.locator("#context-text").inner_html()).split("Picture")[0]

    await describer.say("A red circle, not a square.")
    await expect(guesser.messages(mine=False)).to_contain_text(["A red circle, not a square."], timeout=BOUND_MS)
    answer = "ABCD"[first["choices"].index(first["target"])]
    await guesser.wait_turn(BOUND_MS)
    await guesser.choose(answer)
    await guesser.send()
    for page in (describer, guesser):
        await expect(page.page.locator("#chat-log")).to_contain_text("Correct!", timeout=BOUND_MS)
    record = await saved_record(store, describer)
    assert record == {"target": first["target"], "choices": first["choices"],
                      "description": "A red circle, not a square.", "picked": answer,
                      "picked_file": first["target"], "correct": True}
    assert describer.page_errors == [] and guesser.page_errors == []


async def test_the_preview_shows_what_the_task_allows_and_nothing_can_be_done(
    live: LiveServer, browser: Browser
) -> None:
    pick = await WorkerPage.open(browser, task_url(live.base, "pick"))
    await pick.expect_body("data-phase", "preview")
    first = next(iter(jsonl_contexts(CONTEXTS)))
    assert [s.rsplit("/", 1)[-1] for s in await loaded_images(pick, "#context-text")] == first["choices"]
    qa = await WorkerPage.open(browser, task_url(live.base, "qa"))
    paragraph = next(iter(jsonl_contexts(SAMPLE)))
    await expect(qa.page.locator("#context-text")).to_contain_text(paragraph["text"][:60], timeout=BOUND_MS)
    for page in (pick, qa):
        await expect(page.page.locator("#send-button")).to_be_disabled()
        assert page.sent == [] and page.page_errors == []


def test_assets_are_served_read_only_from_the_tasks_folder_only(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base, timeout=10) as http:
        svg = http.get("/task/pick/assets/red_circle.svg")
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert "sandbox" in svg.headers["content-security-policy"] and "<svg" in svg.text
        for name in ("../picture_pick.py", "..%2Fpicture_pick.py", "%2E%2E/pictures.jsonl", ".hidden.svg",
                     "nope.svg"):
            refused = http.get(f"/task/pick/assets/{name}")
            assert refused.status_code == 404 and refused.json()["error"]["code"] in ("unknown_asset", "not_found"), \
                (name, refused.text)
        assert http.get("/task/qa/assets/red_circle.svg").status_code == 404  # a task without assets
        assert http.post("/task/pick/assets/red_circle.svg").status_code == 405
        assert http.get("/task/qa/preview").json()["context"]["text"]
