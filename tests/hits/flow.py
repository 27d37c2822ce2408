"""Working a published chat run as MTurk workers do: accept, join, chat, survey, submit."""

from __future__ import annotations

import asyncio
from typing import Any

from server.hits import HitManager
from server.providers.mturk import MTurk
from server.store import Store
from tests.hits.harness import TurkWorker, eventually, open_hits

SURVEY = {"form": {"enjoyed": 4, "partner_engaged": "Yes", "comment": ""}}


async def chat_pair(base: str, client: Any, run_id: str, worker_ids: tuple[str, str]) -> list[TurkWorker]:
    """Two workers take two open HITs, chat one message each, answer the survey and submit."""
    hits = await eventually(lambda: _at_least(client, run_id, 2), what="two open HITs")
    workers = [TurkWorker(base, run_id, w) for w in worker_ids]
    for worker, hit in zip(workers, hits, strict=False):
        await worker.accept(hit["HITId"])
        await worker.start()
    await asyncio.gather(*(_play(w) for w in workers))
    for worker in workers:
        await worker.wait_state("done")
        await worker.submit(feedback="fine")
        await worker.drop()  # the page is gone once the form is posted
    return workers


async def _play(worker: TurkWorker) -> None:
    await worker.wait_turn(1)
    await worker.say(f"hello from {worker.worker_id}")
    await worker.wait_turn(2)
    await worker.say("", data=SURVEY)


async def _at_least(client: Any, run_id: str, count: int) -> list[dict[str, Any]] | None:
    hits = open_hits(client, run_id)
    return hits if len(hits) >= count else None


def requester(store: Store, endpoint: str) -> HitManager:
    """The requester's side, as the CLI has it: its own store connection and MTurk client, no runs."""
    public_url = endpoint.removesuffix("/sandbox/mturk")
    return HitManager(mturk=MTurk.connect(endpoint, builtin=True), store=store, runs=None, public_url=public_url)
