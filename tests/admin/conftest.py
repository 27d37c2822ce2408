"""A real server with the admin dashboard installed and an admin token, and a QA worker who finishes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from server.settings import Settings
from server.store import Store
from server.store.hits import FormAnswer, HitStore
from tests.conftest import TEST_RUNS, make_settings
from tests.support.client import Crowd, Worker
from tests.support.server import LiveServer, serve

TOKEN = "test-admin-token-0123456789abcdef"


def admin_settings(db_url: str, tmp_path: Path, token: str = TOKEN) -> Settings:
    return make_settings(db_url, tmp_path, TEST_RUNS).model_copy(update={"admin_token": token})


@pytest.fixture
def admin_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(admin_settings(db_url, tmp_path)) as server:
        yield server


@pytest.fixture
async def admin(admin_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with the admin bearer token."""
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=admin_server.base, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
async def admin_crowd(admin_server: LiveServer) -> AsyncIterator[Crowd]:
    crowd = Crowd(admin_server.base)
    try:
        yield crowd
    finally:
        await crowd.close()


async def finish_qa(crowd: Crowd, worker_id: str, *, submit: bool = True) -> Worker:
    """A worker does the QA task (question, answer) and, by default, submits."""
    worker = await crowd.start("qa", worker_id)
    await worker.wait_turn(1)
    await worker.say(f"Question from {worker_id}?")
    await worker.wait_turn(2)
    await worker.say(f"Answer from {worker_id}.")
    await worker.wait_state("done")
    if submit:
        await worker.send({"type": "submit"})
        await worker.wait_state("submitted")
    return worker


# A form run's answers as the HIT manager keeps them (the form flow itself: tests/hits/test_forms.py).
# Item -> (worker, label, assignment status): t1 agrees fully, t2 two to one, t3 is left out of
# agreement (one answer rejected, one unreadable), so emotion: 2 items, 6 answers, agreement (1 + 1/3) / 2
# = 2/3; labels happy 3, angry 2, upset 1 of 6, so chance = 14/36 and Fleiss' kappa = (2/3 - 14/36) / (1 - 14/36)
# = 5/11.
FORM_WORK = {
    "t1": [("AFORM1", "happy", "Approved"), ("AFORM2", "happy", "Submitted"), ("AFORM3", "happy", "Submitted")],
    "t2": [("AFORM1", "angry", "Submitted"), ("AFORM2", "angry", "Submitted"), ("AFORM3", "<b>upset</b>", "Submitted")],
    "t3": [("AFORM1", "scared", "Rejected")],
}


async def kept_form_answers(server: LiveServer, run_id: str) -> None:
    """A form run (`tests.hits.tasks:form3`) with FORM_WORK kept, plus one answer that could not be read."""
    store = Store(server.settings.db_url)
    await store.open()
    try:
        await store.ensure_run(run_id, task_module="tests.hits.tasks:form3", options={})
        hit_store = HitStore(store)
        at = 1_700_000_000.0
        for item, work in FORM_WORK.items():
            for worker, label, status in work:
                at += 1
                await hit_store.save_form_answer(FormAnswer(
                    assignment_id=f"A-{item}-{worker}", run_id=run_id, hit_id=f"H-{item}", item_id=item,
                    worker_id=worker, answers={"emotion": label}, assignment_status=status, submitted_at=at,
                ))
        await hit_store.save_form_answer(FormAnswer(
            assignment_id="A-t3-AFORM2", run_id=run_id, hit_id="H-t3", item_id="t3", worker_id="AFORM2",
            error="no emotion field in the Answer", submitted_at=at + 1,
        ))
    finally:
        await store.close()
