"""Working a published form run as MTurk workers do: accept each item's HIT, open its page, post the form."""

from __future__ import annotations

from typing import Any

import httpx

from server.store import Store
from server.store.hits import FormAnswer, HitStore
from tests.hits.harness import eventually, open_hits
from tests.sandbox.helpers import accept_as_async, external_submit_url

WORKERS = ("AFORMWORKER1", "AFORMWORKER2", "AFORMWORKER3")
# Item -> the label each of WORKERS gives it. Agreement per item: t1 1, t2 1/3, t3 0 (mean 4/9); labels over
# all: happy 4, angry 2, upset 2, scared 1 of 9, so chance = 25/81 and Fleiss' kappa = (36-25)/(81-25) = 11/56.
ANSWERS = {"t1": ("happy", "happy", "happy"), "t2": ("angry", "angry", "upset"), "t3": ("scared", "happy", "upset")}
TEXTS = {"t1": "Best day ever!", "t2": "My train is late &lt;again&gt; &amp; again.", "t3": "Something moved"}


async def answer_every_item(base: str, client: Any, store: Store, run_id: str) -> list[FormAnswer]:
    """Each worker accepts each item's HIT on the sandbox's worker site, opens its page and submits the form;
    returns the answers once the HIT manager has kept all of them."""
    hit_store = HitStore(store)
    # A HIT shows on MTurk a moment before the HIT manager has recorded it: wait for both.
    hits, item_of = await eventually(
        lambda: _recorded_hits(client, hit_store, run_id, len(ANSWERS)), what="one open, recorded HIT per item"
    )
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for hit in hits:
            item = item_of[hit["HITId"]]
            for worker_id, label in zip(WORKERS, ANSWERS[item], strict=True):
                await work_item(http, worker_id, hit["HITId"], item, label)
    total = sum(len(labels) for labels in ANSWERS.values())
    answers: list[FormAnswer] = await eventually(
        lambda: _kept(hit_store, run_id, total), what=f"{total} form answers kept by the HIT manager"
    )
    return answers


async def work_item(http: httpx.AsyncClient, worker_id: str, hit_id: str, item: str, label: str) -> None:
    """One worker accepts the item's HIT on the sandbox's worker site, opens its page and posts the form."""
    accepted = await accept_as_async(http, worker_id, hit_id)
    assert accepted.status_code == 200, accepted.text
    page = await http.get(accepted.json()["url"])
    assert page.status_code == 200 and TEXTS[item] in page.text and "html_question.js" in page.text
    submitted = await http.post(external_submit_url(accepted.json()["url"]), data={
        "assignmentId": accepted.json()["assignment_id"], "item_id": item, "emotion": label,
    })
    assert submitted.status_code == 200 and 'data-status="submitted"' in submitted.text.replace("'", '"')


async def _recorded_hits(
    client: Any, hit_store: HitStore, run_id: str, count: int
) -> tuple[list[dict[str, Any]], dict[str, str]] | None:
    """The run's open HITs and the item of each, once there are `count` and the HIT manager has recorded them."""
    hits = open_hits(client, run_id)
    item_of = {r.hit_id: r.item_id for r in await hit_store.hits(run_id)}
    if len(hits) < count or any(hit["HITId"] not in item_of for hit in hits):
        return None
    return hits, item_of


async def _kept(hit_store: HitStore, run_id: str, count: int) -> list[FormAnswer] | None:
    answers = await hit_store.form_answers(run_id)
    return answers if len(answers) >= count else None
