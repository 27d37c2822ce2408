"""`parley compensate`: a one-assignment HIT only the worker sees, paid when they submit it, inside the run's
budget, published once however often the command is retried (also after a crash between MTurk making the
HIT and Parley writing its id)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.hits.compensation import ANNOTATION, compensation_token, question
from server.store import Store
from server.store.compensations import CompensationRecord, CompensationStore
from server.store.hits import HitStore
from tests.hits.harness import HitServer, mturk, settings_for
from tests.hits.test_qualifications import refusal
from tests.sandbox.helpers import accept_as, external_submit_url
from tests.test_cli import parley, serve
from tests.test_cli_run import bounded

REASON = "The chat page froze for you on Tuesday; thank you for your patience."


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    settings = settings_for(tmp_path, db_url, {"chat": "tests.hits.tasks:chat2"}, mturk_budget_usd=3.0)
    with serve(settings) as live:
        yield live


def compensation_hits(client: Any) -> list[dict[str, Any]]:
    hits = client.list_hits(MaxResults=100)["HITs"]
    return [h for h in hits if str(h.get("RequesterAnnotation", "")).startswith(ANNOTATION)]


async def records(server: HitServer) -> list[CompensationRecord]:
    store = Store(server.settings.database_url)
    await store.open()
    try:
        return await CompensationStore(HitStore(store)).listed()
    finally:
        await store.close()


async def spend(server: HitServer, run_id: str) -> int:
    store = Store(server.settings.database_url)
    await store.open()
    try:
        return await HitStore(store).spend(run_id)
    finally:
        await store.close()


def test_compensation_is_seen_only_by_its_worker_paid_on_submit_and_published_once(server: HitServer) -> None:
    client = mturk(server.endpoint)
    bounded("run chat's HITs", lambda: server.hits.passes > 0)
    before = asyncio.run(spend(server, "chat"))
    paid = parley(server, "compensate", "AHELPED1", "--amount", "0.40", "--reason", REASON, "--run", "chat")
    assert paid.exit_code == 0 and "published HIT" in paid.output and "paid when they submit" in paid.output, \
        paid.output
    [hit] = compensation_hits(client)
    assert (hit["MaxAssignments"], hit["Reward"]) == (1, "0.40")
    assert asyncio.run(spend(server, "chat")) == before + 48  # $0.40 + 20% fee, counted as soon as reserved

    again = parley(server, "compensate", "AHELPED1", "--amount", "0.40", "--reason", REASON, "--run", "chat")
    assert again.exit_code == 0 and "already published" in again.output and "nothing more" in again.output
    assert len(compensation_hits(client)) == 1 and len(asyncio.run(records(server))) == 1

    assert refusal(server, "chat", "ASOMEONE1", hit["HITId"]) == "not_qualified"  # hidden from everyone else
    with httpx.Client(base_url=server.base, timeout=10) as browser:
        accepted = accept_as(browser, "AHELPED1", hit["HITId"])
        assert accepted.status_code == 200, accepted.text
        page = browser.get(f"/sandbox/worker/html/{hit['HITId']}")
        assert page.status_code == 200 and "froze for you on Tuesday" in page.text and "$0.40" in page.text
        submitted = browser.post(external_submit_url(accepted.json()["url"]),
                                 data={"assignmentId": accepted.json()["assignment_id"]})
        assert submitted.status_code == 200, submitted.text
    # The HIT manager's next pass sees it submitted and it is paid: no one needs to approve it.
    bounded("the compensation to be paid",
            lambda: [r.status for r in asyncio.run(records(server))] == ["paid"])
    assignment = client.get_assignment(AssignmentId=accepted.json()["assignment_id"])["Assignment"]
    assert assignment["AssignmentStatus"] == "Approved"
    third = parley(server, "compensate", "AHELPED1", "--amount", "0.40", "--reason", REASON, "--run", "chat")
    assert third.exit_code == 0 and "already paid" in third.output and len(compensation_hits(client)) == 1


def test_a_retry_after_a_crash_adopts_the_hit_mturk_made_instead_of_paying_twice(server: HitServer) -> None:
    client = mturk(server.endpoint)
    bounded("run chat's HITs", lambda: server.hits.passes > 0)
    token = compensation_token("chat", "ACRASHED1", 25, REASON, "")
    record = CompensationRecord(token=token, run_id="chat", worker_id="ACRASHED1", amount_cents=25, fee_cents=5,
                                reason=REASON)

    async def crashed_after_mturk_made_it() -> None:
        store = Store(server.settings.database_url)
        await store.open()
        try:
            await CompensationStore(HitStore(store)).reserve(record)  # reserved, then MTurk made it, then the crash
        finally:
            await store.close()

    asyncio.run(crashed_after_mturk_made_it())
    made = client.create_hit(
        Title="Compensation from the requester", Description=REASON, Reward="0.25", MaxAssignments=1,
        LifetimeInSeconds=3600, AssignmentDurationInSeconds=3600, Question=question(record),
        RequesterAnnotation=f"{ANNOTATION}:chat", UniqueRequestToken=token,
    )["HIT"]["HITId"]
    retried = parley(server, "compensate", "ACRASHED1", "--amount", "0.25", "--reason", REASON, "--run", "chat")
    assert retried.exit_code == 0 and made in retried.output, retried.output
    assert [h["HITId"] for h in compensation_hits(client)] == [made]


def test_compensation_is_refused_past_the_budget_or_without_a_reason_or_a_run(server: HitServer) -> None:
    bounded("run chat's HITs", lambda: server.hits.passes > 0)
    over = parley(server, "compensate", "AHELPED1", "--amount", "5.00", "--reason", REASON, "--run", "chat")
    assert over.exit_code == 1 and "budget cap of $3.00" in over.output, over.output
    no_reason = parley(server, "compensate", "AHELPED1", "--amount", "0.10", "--reason", " ", "--run", "chat")
    assert no_reason.exit_code == 1 and "needs a --reason" in no_reason.output
    too_little = parley(server, "compensate", "AHELPED1", "--amount", "0.001", "--reason", REASON, "--run", "chat")
    assert too_little.exit_code == 1 and "--amount 0.001" in too_little.output
    stranger = parley(server, "compensate", "ANOBODY1", "--amount", "0.10", "--reason", REASON)
    assert stranger.exit_code == 1 and "took part in no run" in stranger.output and "--run" in stranger.output
    assert compensation_hits(mturk(server.endpoint)) == [] and asyncio.run(records(server)) == []
