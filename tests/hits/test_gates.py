"""Workers Parley would turn away never get to accept: MTurk hides the HITs by qualification."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.store import Store
from tests.hits.flow import requester
from tests.hits.harness import HitServer, TurkWorker, eventually, mturk, open_hits, serve, settings_for
from tests.support.client import JoinRefused


@pytest.fixture
def gated_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"gated": "tests.hits.tasks:gated2"})) as server:
        yield server


async def _refused(worker: TurkWorker, hit_id: str) -> str:
    with pytest.raises(JoinRefused) as refused:
        await worker.accept(hit_id)
    return str(refused.value.code)


async def test_worker_who_failed_onboarding_cannot_accept_another_hit(gated_server: HitServer) -> None:
    client = mturk(gated_server.endpoint)
    hits = await eventually(lambda: _open(client, "gated", 2), what="two open HITs")
    worker = TurkWorker(gated_server.base, "gated", "AFAILS")
    await worker.accept(hits[0]["HITId"])
    await worker.start()
    await worker.wait_turn(1)
    await worker.say("", data={"choice": "green"})
    await worker.wait_state("onboarding_failed")

    async def hidden() -> bool:
        return not await worker.visible_hits() & {h["HITId"] for h in hits[1:]}

    await eventually(hidden, what="the run's HITs hidden from the failed worker")
    assert await _refused(worker, hits[1]["HITId"]) == "not_qualified"
    assert await TurkWorker(gated_server.base, "gated", "AOTHER").visible_hits() >= {h["HITId"] for h in hits[1:]}
    await worker.drop()


async def test_soft_blocked_worker_cannot_accept_until_unblocked(
    chat_server: HitServer, client: Any, db_url: str
) -> None:
    hits = await eventually(lambda: _open(client, "chat", 2), what="two open HITs")
    store = Store(db_url)
    try:
        review = requester(store, chat_server.endpoint).review
        await review.block("ABLOCKED", "copied answers")
        assert await store.worker_block("ABLOCKED") == "copied answers"
        worker = TurkWorker(chat_server.base, "chat", "ABLOCKED")
        assert await _refused(worker, hits[0]["HITId"]) == "not_qualified"
        assert not await worker.visible_hits()
        await review.unblock("ABLOCKED")
        await worker.accept(hits[0]["HITId"])
    finally:
        await store.close()


async def test_worker_at_concurrency_cap_sees_no_hit_until_they_return_theirs(
    chat_server: HitServer, client: Any, db_url: str
) -> None:
    hits = await eventually(lambda: _open(client, "chat", 2), what="two open HITs")
    worker = TurkWorker(chat_server.base, "chat", "ABUSY")
    await worker.accept(hits[0]["HITId"])
    await worker.start()
    await worker.wait_state("waiting")
    other = hits[1]["HITId"]

    async def hidden() -> bool:
        return other not in await worker.visible_hits()

    await eventually(hidden, what="the other HIT hidden from a worker already on one")
    assert await _refused(worker, other) == "not_qualified"
    await worker.return_hit()
    await worker.wait_state("returned")  # assignment sync saw the HIT open again

    async def shown() -> bool:
        return other in await worker.visible_hits()

    await eventually(shown, what="the HITs shown again once the worker holds none")
    await worker.drop()


async def _open(client: Any, run_id: str, count: int) -> list[dict[str, Any]] | None:
    hits = open_hits(client, run_id)
    return hits if len(hits) >= count else None
