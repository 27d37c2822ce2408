"""The study manager on a real server (both databases): a run planned for the built-in Prolific gets a
study, a returned place moves its agent, and a restart stops the study of a run that was stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

import httpx

from server.prolific_sandbox.submissions import blocked
from server.providers.base import Recruitment
from server.providers.prolific import codes_for
from server.settings import Settings
from server.states import RunStatus
from server.store import Store
from tests.conftest import TEST_RUNS, make_settings
from tests.prolific.helpers import client_provider, eventually, hand_in, take_place
from tests.support.client import Worker
from tests.support.server import serve

T = TypeVar("T")


def settings_for(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, TEST_RUNS).model_copy(
        update={"prolific_publish": ["chat"], "mturk_sync_s": 0.3}
    )


async def studies(settings: Settings) -> list[Recruitment]:
    async with client_provider(settings) as provider:
        return await provider.recruitments()


async def test_a_planned_run_gets_a_study_and_a_returned_place_moves_its_agent(db_url: str, tmp_path: Path) -> None:
    with serve(settings_for(db_url, tmp_path)) as live:
        async def published() -> Recruitment | None:
            found = await studies(live.settings)
            return found[0] if found and found[0].open else None

        study = await eventually("the chat run's study to be published", published)
        assert study.run_id == "chat" and study.places >= 2
        with httpx.Client(base_url=live.base, timeout=10) as site:
            params = await asyncio.to_thread(take_place, site, study.id, "PID-r")
            worker = Worker(live.base, "chat", params["PROLIFIC_PID"], params["SESSION_ID"])
            await worker.start()
            await worker.wait_state("waiting")
            returned = await asyncio.to_thread(
                site.post, f"/sandbox/prolific/participant/submissions/{params['SESSION_ID']}/return"
            )
            assert returned.status_code == 200
        await worker.wait_state("returned", timeout=30)
        await worker.close()
        async with client_provider(live.settings) as provider:  # what the server saw, for every instance and CLI
            recorded = await provider.records.submissions("chat")
        assert [(s.id, s.participant_id, s.status) for s in recorded] == [(params["SESSION_ID"], "PID-r", "RETURNED")]


async def test_a_restart_stops_the_study_of_a_run_stopped_while_the_server_was_down(
    db_url: str, tmp_path: Path, store: Store
) -> None:
    settings = settings_for(db_url, tmp_path)
    with serve(settings) as live:
        async def published() -> Recruitment | None:
            found = await studies(live.settings)
            return found[0] if found and found[0].open else None

        study = await eventually("the chat run's study to be published", published)
    await store.set_run_status("chat", status=RunStatus.STOPPED)
    with serve(settings.model_copy(update={"prolific_publish": []})) as again:
        async def stopped() -> Recruitment | None:
            found = [s for s in await studies(again.settings) if s.id == study.id]
            return found[0] if found and found[0].status == "COMPLETED" else None

        await eventually("the stopped run's study to be stopped", stopped)


async def test_work_approved_on_prolific_is_approved_in_parley(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, TEST_RUNS).model_copy(
        update={"prolific_publish": ["qa"], "mturk_sync_s": 0.3}
    )
    with serve(settings) as live:
        async def published() -> Recruitment | None:
            found = await studies(live.settings)
            return found[0] if found and found[0].open else None

        study = await eventually("the qa run's study to be published", published)
        with httpx.Client(base_url=live.base, timeout=10) as site:
            params = await asyncio.to_thread(take_place, site, study.id, "PID-q")
            worker = Worker(live.base, "qa", params["PROLIFIC_PID"], params["SESSION_ID"])
            await worker.start()
            await worker.wait_turn(1)
            await worker.say("What do tide pools trap?")
            await worker.wait_turn(2)
            await worker.say("Water left by the sea.")
            await worker.wait_state("done")
            await worker.send({"type": "submit"})
            await worker.wait_state("submitted")
            landed = await asyncio.to_thread(hand_in, site, "PID-q", codes_for("qa").done)
            assert landed.status_code == 200
        async with client_provider(live.settings) as provider:
            await provider.approve(params["SESSION_ID"])  # as if approved on Prolific's own site
        await worker.wait_state("approved", timeout=30)
        await worker.close()


async def test_a_participant_who_fails_onboarding_is_kept_out_of_the_tasks_studies(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(db_url, tmp_path, TEST_RUNS).model_copy(
        update={"prolific_publish": ["gated"], "mturk_sync_s": 0.3}
    )
    with serve(settings) as live:
        async def published() -> Recruitment | None:
            found = await studies(live.settings)
            return found[0] if found and found[0].open else None

        study = await eventually("the gated run's study to be published", published)
        with httpx.Client(base_url=live.base, timeout=10) as site:
            params = await asyncio.to_thread(take_place, site, study.id, "PID-fail")
        worker = Worker(live.base, "gated", "PID-fail", params["SESSION_ID"])
        await worker.start()
        await worker.wait_turn(1)
        await worker.say("green", {"choice": "green"})
        await worker.wait_state("onboarding_failed")
        await worker.close()
        emulator = live.app.state.prolific_sandbox

        async def excluded() -> bool | None:
            return emulator.run(lambda state, now: blocked(state, study.id, "PID-fail")) or None

        await eventually("the participant to join the onboarding-failed group", excluded)
        assert not emulator.run(lambda state, now: blocked(state, study.id, "PID-other"))
