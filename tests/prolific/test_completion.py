"""A Prolific participant on a real Parley server (both databases): the study URL's parameters join the
run, and the end of the task sends them to the completion URL with the code that fits how it ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from server.providers.base import RecruitmentSpec, SubmissionStatus
from server.providers.prolific import ProlificProvider, codes_for
from tests.prolific.helpers import client_provider, take_place
from tests.support.client import Crowd, Worker
from tests.support.server import LiveServer


async def complete(live: LiveServer, worker: Worker, token: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as http:
        return await http.post(f"/task/{worker.run_id}/prolific/complete", json={"token": token or worker.token})


async def finish_qa(worker: Worker) -> None:
    await worker.wait_turn(1)
    await worker.say("What do tide pools trap?")
    await worker.wait_turn(2)
    await worker.say("Water left by the sea.")
    await worker.wait_state("done")


@pytest.fixture
async def provider(live: LiveServer) -> AsyncIterator[ProlificProvider]:
    async with client_provider(live.settings) as made:
        yield made


async def test_completed_work_is_sent_to_the_completion_url_with_the_done_code_before_and_after_submitting(
    live: LiveServer, crowd: Crowd
) -> None:
    worker = await crowd.start("qa", "PID-done")
    early = await complete(live, worker)
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_finished"
    await finish_qa(worker)
    reply = await complete(live, worker)
    assert reply.status_code == 200, reply.text
    expected = f"{live.base}/sandbox/prolific/submissions/complete?cc={codes_for('qa').done}"
    assert reply.json() == {"url": expected, "completed": True}
    await worker.send({"type": "submit"})
    await worker.wait_state("submitted")
    assert (await complete(live, worker)).json()["url"] == expected  # a reload after submitting: same code


async def test_a_participant_whose_partner_left_gets_the_paid_without_completing_code(
    live: LiveServer, crowd: Crowd
) -> None:
    a = await crowd.start("chat", "PID-a")
    await a.wait_state("waiting")
    b = await crowd.start("chat", "PID-b")
    await asyncio.gather(a.wait_state("in_task"), b.wait_state("in_task"))
    # The one whose turn it is leaves for good: its page closes and the reconnect grace (1.5 s) runs out
    # within its 5 s turn. (A partner who leaves while the other holds the turn is reported only when that
    # turn ends: a known limit of the waiting side, not what this test is about.)
    turns = {asyncio.ensure_future(w.wait_turn(1, timeout=30)): w for w in (a, b)}
    done, pending = await asyncio.wait(turns, return_when=asyncio.FIRST_COMPLETED)
    for waiting in pending:
        waiting.cancel()
    leaver = turns[next(iter(done))]
    stayer = b if leaver is a else a
    await leaver.drop()
    await stayer.wait_state("partner_left", timeout=30)
    reply = await complete(live, stayer)
    assert reply.json()["completed"] is False
    assert reply.json()["url"].endswith(f"?cc={codes_for('chat').paid_incomplete}")


async def test_a_forged_or_foreign_token_gets_no_code(live: LiveServer, crowd: Crowd) -> None:
    worker = await crowd.start("qa", "PID-x")
    forged = await complete(live, worker, token=worker.token[:-2] + "xx")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_token"
    elsewhere = Worker(live.base, "chat", "PID-x")
    elsewhere.token = worker.token
    assert (await complete(live, elsewhere)).status_code == 401


async def test_a_participant_takes_a_place_on_the_built_in_prolific_works_and_is_approved(
    live: LiveServer, provider: ProlificProvider
) -> None:
    """End to end on the emulator the server mounts: publish, take a place, work, complete, approve."""
    spec = RecruitmentSpec(
        run_id="qa", title="Ask a question", description="Ask and answer about a short text.",
        task_url=f"{live.base}/task/qa", reward_cents=100, estimated_minutes=5, max_minutes=20,
    )
    study = await provider.publish(spec, 1)
    with httpx.Client(base_url=live.base, timeout=10) as site:
        params = await asyncio.to_thread(take_place, site, study.id, "PID-e2e")
        worker = Worker(live.base, "qa", params["PROLIFIC_PID"], params["SESSION_ID"])
        await worker.start()
        await finish_qa(worker)
        url = (await complete(live, worker)).json()["url"]
        await worker.send({"type": "submit"})
        await worker.wait_state("submitted")
        code = parse_qs(urlsplit(url).query)["cc"][0]
        landed = await asyncio.to_thread(site.get, urlsplit(url).path, params={"cc": code})
        assert landed.status_code == 200 and "awaiting review" in landed.text
    await worker.close()
    [submission] = await provider.submissions("qa")
    assert (submission.id, submission.worker_id, submission.code) == (params["SESSION_ID"], "PID-e2e", code)
    assert (await provider.approve(submission.id)).status == SubmissionStatus.APPROVED
