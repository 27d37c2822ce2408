"""Gold checks with consequences (worlds.base.GoldPolicy): a worker who fails the task's gold check gets their
score pushed to MTurk as the task's qualification, is soft-blocked (MTurk hides the run's HITs from them)
and has their work flagged for rejection on the dashboard and in `parley review`; one who passes gets 100
and nothing else. A real server, its built-in sandbox, workers who accept HITs and answer over websockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.hits.gold import FLAG
from server.store import Store
from server.store.review import ReviewStore
from tests.admin.conftest import TOKEN
from tests.hits.harness import HitServer, TurkWorker, eventually, mturk, open_hits, settings_for
from tests.test_cli import parley, serve

QUAL = "Parley test: sky check"


@pytest.fixture
def gold_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    settings = settings_for(tmp_path, db_url, {"gold": "tests.hits.tasks:gold_checked"}, admin_token=TOKEN)
    with serve(settings) as live:
        yield live


async def work(server: HitServer, worker_id: str, sky: str, workers: list[TurkWorker]) -> TurkWorker:
    """The worker accepts an open HIT of the run, answers the gold check with `sky`, names a fruit, submits."""
    client = mturk(server.endpoint)
    hits = await eventually(lambda: asyncio.to_thread(open_hits, client, "gold"), what="an open HIT of run gold")
    worker = TurkWorker(server.base, "gold", worker_id)
    workers.append(worker)
    await worker.accept(hits[0]["HITId"])
    await worker.start()
    await worker.wait_turn(1)
    await worker.say("", data={"choice": sky})
    await worker.wait_turn(2)
    await worker.say("A pear")
    await worker.wait_state("done")
    await worker.submit()
    return worker


async def scores(client: Any) -> dict[str, int]:
    types = await asyncio.to_thread(client.list_qualification_types, MustBeRequestable=False,
                                    MustBeOwnedByCaller=True)
    found = [t["QualificationTypeId"] for t in types["QualificationTypes"] if t["Name"] == QUAL]
    if not found:
        return {}
    held = await asyncio.to_thread(client.list_workers_with_qualification_type, QualificationTypeId=found[0])
    return {q["WorkerId"]: q["IntegerValue"] for q in held["Qualifications"]}


async def test_a_failed_gold_check_pushes_its_score_soft_blocks_and_flags_the_work(gold_server: HitServer) -> None:
    client = mturk(gold_server.endpoint)
    store = Store(gold_server.settings.db_url)
    await store.open()
    workers: list[TurkWorker] = []
    try:
        failing = await work(gold_server, "AGOLDFAIL1", "green", workers)
        passing = await work(gold_server, "AGOLDPASS1", "blue", workers)
        pushed = await eventually(lambda: _both(client), timeout=30, what="both workers' gold scores on MTurk")
        assert pushed == {"AGOLDFAIL1": 0, "AGOLDPASS1": 100}
        assert "gold checks" in (await eventually(lambda: store.worker_block("AGOLDFAIL1"), timeout=30,
                                                  what="the failing worker soft-blocked") or "")
        assert await store.worker_block("AGOLDPASS1") is None

        async def hidden() -> bool:
            open_now = {h["HITId"] for h in await asyncio.to_thread(open_hits, client, "gold")}
            return bool(open_now) and not (await failing.visible_hits() & open_now)

        await eventually(hidden, timeout=30, what="the run's HITs hidden from the soft-blocked worker")
        assert await passing.visible_hits()  # the one who passed still sees them

        flags = [a for a in await ReviewStore(store).actions_for_run("gold") if a.action == FLAG]
        assert [(a.worker_id, a.reason, a.actor) for a in flags] == [("AGOLDFAIL1", "failed gold check sky", "gold")]
        agent = await store.agent_for_assignment("gold", assignment_id=failing.assignment_id)
        assert agent is not None and agent.conversation_id
        async with httpx.AsyncClient(base_url=gold_server.base, timeout=10,
                                     headers={"authorization": f"Bearer {TOKEN}"}) as admin:
            transcript = (await admin.get(f"/admin/api/conversations/{agent.conversation_id}")).json()
            snapshot = (await admin.get("/admin/api/runs/gold")).json()
        [human] = transcript["participants"]
        assert ("flag", "failed gold check sky") in {(r["action"], r["reason"]) for r in human["reviews"]}
        assert snapshot["flagged"] == 1
        review = await asyncio.to_thread(parley, gold_server, "review", "gold")
        assert "flagged: failed gold check sky" in review.output, review.output
    finally:
        await asyncio.gather(*(w.close() for w in workers))
        await store.close()


async def _both(client: Any) -> dict[str, int] | None:
    found = await scores(client)
    return found if len(found) == 2 else None
