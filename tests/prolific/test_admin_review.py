"""The review dashboard's API on a run recruited on the built-in Prolific (both databases): approve,
reject (Prolific's rules), a bonus paid once, and a block, each acting on Prolific and on the agent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.prolific_sandbox.model import ProlificState
from server.providers.prolific import codes_for
from tests.admin.conftest import TOKEN, admin_settings
from tests.prolific.helpers import eventually_sync, hand_in, take_place, try_place
from tests.support.client import Worker
from tests.support.server import LiveServer, serve

REASON = "The answer does not relate to the question asked about the text, and the question is not about it." * 2


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = admin_settings(db_url, tmp_path).model_copy(update={"prolific_publish": ["qa"], "mturk_sync_s": 0.3})
    with serve(settings) as server:
        yield server


def wait_for_study(live: LiveServer) -> str:
    def made() -> str | None:
        found = live.app.state.prolific_sandbox.run(lambda state, now: [s.id for s in state.studies.values()])
        return str(found[0]) if found else None

    return eventually_sync("the study manager to make the qa run's study", made)


async def work_and_hand_in(live: LiveServer, site: httpx.Client, study: str, pid: str) -> Worker:
    params = await asyncio.to_thread(take_place, site, study, pid)
    worker = Worker(live.base, "qa", pid, params["SESSION_ID"])
    await worker.start()
    await worker.wait_turn(1)
    await worker.say("What do tide pools trap?")
    await worker.wait_turn(2)
    await worker.say("Water left by the sea.")
    await worker.wait_state("done")
    await worker.send({"type": "submit"})
    await worker.wait_state("submitted")
    assert (await asyncio.to_thread(hand_in, site, pid, codes_for("qa").done)).status_code == 200
    return worker


async def test_the_dashboard_reviews_prolific_work_on_prolific(live: LiveServer) -> None:
    study = await asyncio.to_thread(wait_for_study, live)
    headers = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=live.base, timeout=10) as site:
        async with httpx.AsyncClient(base_url=live.base, headers=headers, timeout=10) as admin:
            good = await work_and_hand_in(live, site, study, "5f0000000000000000000001")
            bad = await work_and_hand_in(live, site, study, "5f0000000000000000000002")

            approved = await admin.post(f"/admin/api/agents/{good.agent_id}/approve", json={"feedback": ""})
            assert approved.status_code == 200, approved.text
            assert approved.json()["via"] == "prolific" and approved.json()["state"] == "approved"
            short = await admin.post(f"/admin/api/agents/{bad.agent_id}/reject", json={"reason": "wrong"})
            assert short.status_code == 422 and "100 characters" in short.json()["error"]["message"]
            rejected = await admin.post(f"/admin/api/agents/{bad.agent_id}/reject", json={"reason": REASON})
            assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"

            for _ in range(2):
                paid = await admin.post(f"/admin/api/agents/{good.agent_id}/bonus",
                                        json={"amount": "0.75", "reason": "clear answer", "key": "k1"})
                assert paid.status_code == 200 and paid.json()["via"] == "prolific", paid.text
            blocked = await admin.post("/admin/api/workers/5f0000000000000000000003/block", json={"reason": "spam"})
            assert blocked.json()["via"] == "prolific"
            refused = await asyncio.to_thread(try_place, site, study, "5f0000000000000000000003")
            assert refused.status_code == 409
        for worker in (good, bad):
            await worker.close()

    def seen(state: ProlificState, now: float) -> dict[str, tuple[str, list[int]]]:
        return {s.participant_id: (s.status.value, s.bonus_payments) for s in state.submissions.values()}

    assert live.app.state.prolific_sandbox.run(seen) == {
        "5f0000000000000000000001": ("APPROVED", [75]), "5f0000000000000000000002": ("REJECTED", []),
    }
