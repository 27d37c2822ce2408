"""The dashboard's requester actions that match the CLI, on a real server publishing a form run to its
built-in sandbox: review of form answers (approve / reject per assignment), unblock, notify, compensate, and
the figures that keep money spent apart from money reserved for open HITs. Through the JSON API and in real
Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from server.hits import plan as rules
from server.store import Store
from server.store.hits import HitStore
from tests.admin.conftest import TOKEN
from tests.admin.test_dashboard_browser import _logged_in
from tests.hits.form_flow import answer_every_item
from tests.hits.harness import HitServer, eventually, mturk, settings_for
from tests.hits.test_compensation import compensation_hits
from tests.test_cli import serve


@pytest.fixture
def form_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    settings = settings_for(tmp_path, db_url, {"form": "tests.hits.tasks:form3"}, admin_token=TOKEN,
                            mturk_budget_usd=20.0)
    with serve(settings) as live:
        yield live


@pytest.fixture
async def answered(form_server: HitServer) -> AsyncIterator[HitServer]:
    """The form run with every item answered by three workers (nine answers awaiting review), once the HIT
    manager has settled its HITs (all worked: their money spent, none reserved)."""
    store = Store(form_server.settings.db_url)
    await store.open()
    try:
        await answer_every_item(form_server.base, mturk(form_server.endpoint), store, "form")
        hit_store = HitStore(store)
        await eventually(lambda: _settled(hit_store), timeout=30, what="the form run's three HITs settled")
    finally:
        await store.close()
    yield form_server


async def _settled(hit_store: HitStore) -> bool:
    return {r.status for r in await hit_store.hits("form")} == {"submitted"}


def admin_client(server: HitServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base, headers={"authorization": f"Bearer {TOKEN}"}, timeout=15)


async def test_form_answers_are_reviewed_per_assignment_and_money_is_split(answered: HitServer) -> None:
    client = mturk(answered.endpoint)
    async with admin_client(answered) as admin:
        latest = (await admin.get("/admin/api/runs/form/form")).json()["latest"]
        first, second = latest[0]["assignment_id"], latest[1]["assignment_id"]
        no_reason = await admin.post(f"/admin/api/form-answers/{second}/reject", json={"reason": " "})
        assert no_reason.status_code == 422 and no_reason.json()["error"]["code"] == "reason_required"
        approved = await admin.post(f"/admin/api/form-answers/{first}/approve", json={"feedback": "Thanks"})
        assert approved.status_code == 200 and approved.json()["status"] == "Approved", approved.text
        again = await admin.post(f"/admin/api/form-answers/{first}/approve", json={})
        assert again.json()["duplicate"] is True
        rejected = await admin.post(f"/admin/api/form-answers/{second}/reject", json={"reason": "Random labels"})
        assert rejected.status_code == 200 and rejected.json()["status"] == "Rejected", rejected.text
        unknown = await admin.post("/admin/api/form-answers/nope/approve", json={})
        assert unknown.status_code == 404
        assert client.get_assignment(AssignmentId=first)["Assignment"]["AssignmentStatus"] == "Approved"
        assert client.get_assignment(AssignmentId=second)["Assignment"]["AssignmentStatus"] == "Rejected"

        spend = (await admin.get("/admin/api/runs/form")).json()["spend"]
        # Three items of three assignments at $0.05 (+ $0.01 fee each): all worked, so spent; nothing open.
        assert (spend["spent_cents"], spend["reserved_cents"], spend["budget_cents"]) == (54, 0, 2000), spend


async def test_unblock_notify_and_compensate_from_the_dashboard(answered: HitServer) -> None:
    client = mturk(answered.endpoint)
    async with admin_client(answered) as admin:
        blocked = await admin.post("/admin/api/workers/AFORMWORKER1/block", json={"reason": "Spam"})
        assert blocked.status_code == 200, blocked.text
        unblocked = await admin.post("/admin/api/workers/AFORMWORKER1/unblock", json={})
        assert unblocked.status_code == 200, unblocked.text
        types = client.list_qualification_types(MustBeRequestable=False, MustBeOwnedByCaller=True)
        soft_block = next(t["QualificationTypeId"] for t in types["QualificationTypes"]
                          if t["Name"] == "Parley soft block")
        held = client.list_workers_with_qualification_type(QualificationTypeId=soft_block, Status="Granted")
        assert "AFORMWORKER1" not in {q["WorkerId"] for q in held["Qualifications"]}

        notified = await admin.post("/admin/api/workers/notify", json={
            "worker_ids": ["AFORMWORKER2"], "subject": "New batch", "message": "More items tomorrow."})
        assert notified.status_code == 200 and notified.json()["notified"] == ["AFORMWORKER2"], notified.text
        empty = await admin.post("/admin/api/workers/notify", json={
            "worker_ids": ["AFORMWORKER2"], "subject": "New batch", "message": " "})
        assert empty.status_code == 422

        paid = await admin.post("/admin/api/workers/AFORMWORKER3/compensate", json={
            "amount": "0.30", "reason": "Item t2 would not load for you", "run_id": "form"})
        assert paid.status_code == 200 and paid.json()["duplicate"] is False, paid.text
        retried = await admin.post("/admin/api/workers/AFORMWORKER3/compensate", json={
            "amount": "0.30", "reason": "Item t2 would not load for you", "run_id": "form"})
        assert retried.json()["duplicate"] is True and retried.json()["hit_id"] == paid.json()["hit_id"]
        [hit] = compensation_hits(client)
        assert hit["Reward"] == "0.30" and hit["HITId"] == paid.json()["hit_id"]
        over = await admin.post("/admin/api/workers/AFORMWORKER3/compensate", json={
            "amount": "50.00", "reason": "Too much", "run_id": "form"})
        assert over.status_code == 409 and over.json()["error"]["code"] == "budget_exceeded"
        spend = (await admin.get("/admin/api/runs/form")).json()["spend"]
        compensation = 30 + rules.fee_cents(30)
        assert spend["reserved_cents"] == compensation and spend["spent_cents"] == 54, spend


@pytest.mark.browser
async def test_a_requester_reviews_answers_and_compensates_a_worker_in_chromium(
    answered: HitServer, browser: Browser
) -> None:
    page = await _logged_in(browser, answered, "form")
    await expect(page.locator("#spent")).to_have_text("$0.54")
    await expect(page.locator("#reserved")).to_have_text("$0.00")
    await expect(page.locator("#budget")).to_have_text("$20.00")
    rows = page.locator("#form-latest tbody tr")
    await expect(rows).to_have_count(9)
    first = rows.nth(0)
    assignment = await first.get_attribute("data-assignment")
    await first.locator("button.reject").click()  # no reason: refused, said why
    await expect(page.locator("#notice")).to_contain_text("needs a reason")
    await first.locator("input.answer-reason").fill("Labels at random")
    await first.locator("button.reject").click()
    await expect(page.locator(f'#form-latest tr[data-assignment="{assignment}"]')).to_contain_text("Rejected")
    await rows.nth(1).locator("button.approve").click()
    await expect(rows.nth(1)).to_contain_text("Approved")

    await page.fill("#worker-id", "AFORMWORKER2")
    await page.fill("#compensate-amount", "0.25")
    await page.fill("#compensate-reason", "The page froze for you")
    await page.click("#compensate")
    await expect(page.locator("#notice")).to_contain_text("published HIT")
    await expect(page.locator("#reserved")).to_have_text("$0.30")  # the compensation waits for its worker
    client = mturk(answered.endpoint)
    assert [h["Reward"] for h in await asyncio.to_thread(compensation_hits, client)] == ["0.25"]
    status = client.get_assignment(AssignmentId=assignment)["Assignment"]["AssignmentStatus"]
    assert status == "Rejected"
    await page.close()
