"""Form runs: one HTMLQuestion HIT per item with k assignments, answers kept once per item and worker,
exported, agreement computed; publishing again (or after a crash) makes nothing twice; the budget cap holds."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.export import export_run
from server.hits import publish_run
from server.hits.forms import answer_record, html_form_of
from server.states import HitStatus
from server.store import Store
from server.store.hits import HTML, HitStore
from tests.hits import tasks
from tests.hits.flow import requester
from tests.hits.form_flow import ANSWERS, WORKERS, answer_every_item, work_item
from tests.hits.harness import HitServer, eventually, mturk, open_hits, serve, settings_for
from tests.sandbox.helpers import accept_as_async


@pytest.fixture
def form_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"form": "tests.hits.tasks:form3"})) as server:
        yield server


@pytest.fixture
def quiet_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    """Only the sandbox: its HIT manager makes its start-up pass and then waits, so the test drives publishing."""
    with serve(settings_for(tmp_path, db_url, {}, mturk_sync_s=3600.0)) as server:
        yield server


async def test_each_item_is_one_html_hit_whose_k_answers_are_kept_exported_and_agree(form_server: HitServer) -> None:
    client = mturk(form_server.endpoint)
    store = Store(form_server.settings.db_url)  # the test's own connection: a Store belongs to its loop
    try:
        answers = await answer_every_item(form_server.base, client, store, "form")
        for hit in [client.get_hit(HITId=a.hit_id)["HIT"] for a in answers[:: len(WORKERS)]]:
            assert hit["MaxAssignments"] == 3 and "<HTMLQuestion" in hit["Question"]
            assert hit["RequesterAnnotation"] == "form"
        given = [(item, w, label) for item, labels in ANSWERS.items() for w, label in zip(WORKERS, labels, strict=True)]
        assert sorted((a.item_id, a.worker_id, a.answers["emotion"]) for a in answers) == sorted(given)
        assert {a.assignment_status for a in answers} == {"Submitted"} and not any(a.error for a in answers)

        form = html_form_of(tasks.form3())
        assert form is not None
        [figures] = form.agreement([answer_record(a) for a in answers])
        assert figures["field"] == "emotion" and figures["items"] == 3 and figures["answers"] == 9
        assert figures["percent_agreement"] == pytest.approx(4 / 9)
        assert figures["fleiss_kappa"] == pytest.approx(11 / 56)
        assert figures["item_agreement"] == pytest.approx({"t1": 1.0, "t2": 1 / 3, "t3": 0.0})
        assert figures["majority"] == {"t1": "happy", "t2": "angry", "t3": "scared"}

        hit_store = HitStore(store)
        settled = await eventually(lambda: _all_submitted(hit_store), what="every form HIT settled as submitted")
        assert [(r.question, r.max_assignments, r.charge_cents) for r in settled] == [(HTML, 3, 18)] * 3
        passes = form_server.hits.passes
        await eventually(_passes(form_server, passes + 2), what="two more passes")
        assert len(await hit_store.form_answers("form")) == 9  # re-syncing keeps each answer once

        manager = requester(store, form_server.endpoint)
        await manager.review.approve(answers[0].assignment_id, "Thanks")
        [approved] = await hit_store.form_answers("form", statuses=["Approved"])
        assert approved.assignment_id == answers[0].assignment_id

        lines = [json.loads(line) async for line in _lines(store, "form")]
        exported = [line for line in lines if line.get("type") == "form_answer"]
        assert len(exported) == 9 and not any(w in json.dumps(exported) for w in WORKERS)  # pseudonyms only
        assert {(e["item_id"], e["answers"]["emotion"]) for e in exported} == {
            (item, label) for item, labels in ANSWERS.items() for label in labels
        }
        assert sorted(e["review_status"] for e in exported) == ["approved"] + ["pending"] * 8
    finally:
        await store.close()


@dataclass
class Requester:
    """The test's side of a quiet server: its MTurk client, a HIT manager on its own store, the form task."""

    client: Any
    store: Store
    manager: Any
    task: Any
    form: Any


@contextlib.asynccontextmanager
async def requester_of(server: HitServer) -> AsyncIterator[Requester]:
    await eventually(_passes(server, 1), what="the server's start-up pass")
    store = Store(server.settings.db_url)
    await store.open()
    try:
        task = tasks.form3()
        form = html_form_of(task)
        assert form is not None
        yield Requester(mturk(server.endpoint), store, requester(store, server.endpoint), task, form)
    finally:
        await store.close()


async def test_publishing_again_or_after_a_crash_makes_no_second_hit(quiet_server: HitServer) -> None:
    async with requester_of(quiet_server) as side:
        client, store, manager, task, form = side.client, side.store, side.manager, side.task, side.form
        await store.ensure_run("side", task_module="tests.hits.tasks:form3", options={})
        plan = await publish_run(manager.hit_store, run_id="side", account="builtin", task=task, budget_usd=0,
                                 live=False, public_url=quiet_server.base)
        assert (plan.question, plan.assignments) == (HTML, 3)
        made = await manager.forms.publish(plan, task, form)
        assert sorted(r.item_id for r in made) == ["t1", "t2", "t3"]
        first = {h["HITId"] for h in open_hits(client, "side")}
        assert len(first) == 3

        plan = await publish_run(manager.hit_store, run_id="side", account="builtin", task=task, budget_usd=0,
                                 live=False, public_url=quiet_server.base)
        assert await manager.forms.publish(plan, task, form) == []  # a rerun publishes nothing new

        # A crash between MTurk making t2's HIT and Parley writing its id: the record is `creating` again.
        [t2] = [r for r in await manager.hit_store.hits("side") if r.item_id == "t2"]
        await manager.hit_store.set_hit(t2.token, hit_id=None, status=HitStatus.CREATING)
        await manager.forms.tend(plan, task, await _listing(manager, "side"), publishing=True)
        records = await manager.hit_store.hits("side")
        assert {r.item_id: r.hit_id for r in records}["t2"] == t2.hit_id
        assert sorted(r.status for r in records) == ["open"] * 3
        assert {h["HITId"] for h in open_hits(client, "side")} == first


async def test_an_item_whose_hit_closed_unworked_gets_a_new_hit_while_the_run_publishes(
    quiet_server: HitServer,
) -> None:
    async with requester_of(quiet_server) as side:
        client, manager, task, form = side.client, side.manager, side.task, side.form
        plan = await publish_run(manager.hit_store, run_id="again", account="builtin", task=task, budget_usd=0,
                                 live=False, public_url=quiet_server.base)
        await manager.forms.publish(plan, task, form)
        first = {r.item_id: r for r in await manager.hit_store.hits("again")}

        # t1's lifetime runs out with nobody having worked it: its charge is released and it gets a new HIT.
        client.update_expiration_for_hit(HITId=first["t1"].hit_id, ExpireAt=datetime(2015, 1, 1, tzinfo=UTC))
        await manager.forms.tend(plan, task, await _listing(manager, "again"), publishing=True)
        records = await manager.hit_store.hits("again")
        t1 = sorted((r for r in records if r.item_id == "t1"), key=lambda r: r.status)
        assert [r.status for r in t1] == ["expired", "open"]
        assert t1[0].hit_id == first["t1"].hit_id and t1[1].hit_id not in {r.hit_id for r in first.values()}
        assert t1[1].token != first["t1"].token and t1[1].max_assignments == 3
        opened = {h["HITId"] for h in open_hits(client, "again")}
        assert opened == {t1[1].hit_id, first["t2"].hit_id, first["t3"].hit_id}
        assert await manager.hit_store.spend("again") == 3 * 18  # the expired HIT's charge is released

        await manager.forms.tend(plan, task, await _listing(manager, "again"), publishing=True)
        assert len(await manager.hit_store.hits("again")) == 4  # another pass makes nothing more

        # A stopped run's HITs close and nothing is published again until the run resumes; then every item is.
        await manager.forms.tend(plan, task, await _listing(manager, "again"), publishing=False)
        assert open_hits(client, "again") == []
        await manager.forms.tend(plan, task, await _listing(manager, "again"), publishing=False)
        assert sorted(r.status for r in await manager.hit_store.hits("again")) == ["expired"] * 4
        assert open_hits(client, "again") == []
        await manager.forms.tend(plan, task, await _listing(manager, "again"), publishing=True)
        assert sorted(h["HITId"] not in opened for h in open_hits(client, "again")) == [True] * 3
        assert sorted(r.status for r in await manager.hit_store.hits("again")) == ["expired"] * 4 + ["open"] * 3


async def test_a_worker_who_answered_per_worker_total_items_no_longer_sees_the_runs_hits(
    quiet_server: HitServer,
) -> None:
    async with requester_of(quiet_server) as side:
        manager, task = side.manager, tasks.form3_capped()
        form = html_form_of(task)
        assert form is not None and task.caps.per_worker_total == 2
        plan = await publish_run(manager.hit_store, run_id="capped2", account="builtin", task=task, budget_usd=0,
                                 live=False, public_url=quiet_server.base)
        hit_of = {r.item_id: r.hit_id or "" for r in await manager.forms.publish(plan, task, form)}
        first, second = WORKERS[:2]
        async with httpx.AsyncClient(base_url=quiet_server.base, timeout=10) as http:
            await work_item(http, first, hit_of["t1"], "t1", "happy")
            await work_item(http, first, hit_of["t2"], "t2", "angry")
            await work_item(http, second, hit_of["t1"], "t1", "happy")
            await manager.forms.tend(plan, task, await _listing(manager, "capped2"), publishing=True)
            kept = await manager.hit_store.form_answers("capped2")
            assert sorted((a.worker_id, a.item_id) for a in kept) == [(first, "t1"), (first, "t2"), (second, "t1")]

            refused = await accept_as_async(http, first, hit_of["t3"])
            assert refused.status_code == 403 and "per-worker cap reached: capped2" in refused.text
            await work_item(http, second, hit_of["t3"], "t3", "scared")  # one item below the cap: still served
            await manager.forms.tend(plan, task, await _listing(manager, "capped2"), publishing=True)
            refused = await accept_as_async(http, second, hit_of["t2"])
            assert refused.status_code == 403  # the second reached the cap with t3


async def test_the_budget_cap_counts_every_assignment_of_a_form_hit(quiet_server: HitServer) -> None:
    async with requester_of(quiet_server) as side:
        client, manager, task, form = side.client, side.manager, side.task, side.form
        # Three assignments of $0.05 + $0.01 fee: $0.18 a HIT, so $0.40 pays for two items, not three.
        plan = await publish_run(manager.hit_store, run_id="capped", account="builtin", task=task, budget_usd=0.40,
                                 live=False, public_url=quiet_server.base)
        made = await manager.forms.publish(plan, task, form)
        assert [r.item_id for r in made] == ["t1", "t2"]
        assert len(open_hits(client, "capped")) == 2
        assert await manager.hit_store.spend("capped") == 36
        assert await manager.forms.publish(plan, task, form) == []  # still over the cap: nothing more
        with pytest.raises(ValueError, match=r"1\.\.9"):
            await publish_run(manager.hit_store, run_id="big", account="builtin", task=task, budget_usd=0,
                              live=False, public_url=quiet_server.base, assignments=10)


async def _all_submitted(hit_store: HitStore) -> list[Any] | None:
    records = await hit_store.hits("form")
    return records if records and all(r.status == "submitted" for r in records) else None


def _passes(server: HitServer, count: int) -> Any:
    async def check() -> bool:
        return server.hits.passes >= count

    return check


async def _listing(manager: Any, run_id: str) -> list[dict[str, Any]]:
    listing: dict[str, list[dict[str, Any]]] = await manager.publisher.listing({run_id})
    return listing.get(run_id, [])


async def _lines(store: Store, run_id: str) -> Any:
    text = "".join([chunk async for chunk in export_run(store, run_id, "jsonl")])
    for line in text.splitlines():
        yield line
