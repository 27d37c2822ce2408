"""What main.py calls to bring the built-in Prolific in, and where Parley's Prolific provider finds its API.

The emulator is served beside the built-in MTurk whenever the provider is `builtin` (and no Prolific API is
configured): a development server then recruits on either with zero configuration, and an unused emulator
costs one router (its state file is written only once something changes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from server.hits import plan as rules
from server.ownership import Ownership
from server.prolific_manager import StudyManager
from server.prolific_sandbox import API_PATH, ProlificSandbox, build_prolific_sandbox
from server.providers.prolific import ProlificProvider
from server.providers.prolific_api import ProlificApi
from server.registry import Runs
from server.settings import Settings
from server.store import Store
from server.store.prolific import ProlificRecords, StudyPlan
from server.tasks import load_task
from server.tending import named_runs, tended
from worlds.base import Task

PROLIFIC_API = "https://api.prolific.com/api/v1"
PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete"


def builtin_prolific(settings: Settings) -> bool:
    """Whether Prolific is this server's built-in one: the development provider, and no Prolific configured."""
    return settings.provider == "builtin" and not settings.prolific_api_url and not settings.prolific_api_token


def mount_prolific_sandbox(app: FastAPI, settings: Settings) -> ProlificSandbox | None:
    if not builtin_prolific(settings):
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sandbox, router = build_prolific_sandbox(state_path=settings.data_dir / "prolific.json")
    app.include_router(router)
    return sandbox


def prolific_api_url(settings: Settings) -> str:
    """The API the provider calls: the configured one, else Prolific's when a token is set, else built-in."""
    if settings.prolific_api_url:
        return settings.prolific_api_url.rstrip("/")
    if settings.prolific_api_token:
        return PROLIFIC_API
    return settings.public_url.rstrip("/") + API_PATH


def completion_url(settings: Settings) -> str:
    """Where a participant is sent at the end with `?cc=CODE`: the emulator's page, or Prolific's."""
    if builtin_prolific(settings):
        return settings.public_url.rstrip("/") + "/sandbox/prolific/submissions/complete"
    return PROLIFIC_COMPLETE


def prolific_provider(settings: Settings, store: Store) -> ProlificProvider:
    """The Prolific provider for these settings, keeping its records in `store`. Prolific has no sandbox of its
    own: its API is real money."""
    url = prolific_api_url(settings)
    live = url == PROLIFIC_API
    if not builtin_prolific(settings) and not settings.prolific_api_token:
        raise ValueError(
            "PARLEY_PROLIFIC_API_TOKEN must be set to recruit on Prolific (create a token in Prolific's "
            "settings, API tokens), or run with PARLEY_PROVIDER=builtin to use the built-in Prolific"
        )
    account = "builtin" if builtin_prolific(settings) else url
    return ProlificProvider(
        ProlificApi(url, settings.prolific_api_token or "parley-builtin"),
        ProlificRecords(store, account),
        fee_percent=settings.prolific_fee_percent, vat_percent=settings.prolific_vat_percent, is_live=live,
    )


async def plan_run(
    provider: ProlificProvider, *, run_id: str, task_module: str, task: Task, budget_cents: int,
    estimated_minutes: int = 10,
) -> StudyPlan:
    """Mark a run for recruiting on Prolific; the study manager publishes and tends its study."""
    if provider.is_live and budget_cents <= 0:
        raise ValueError("a run on live Prolific needs a budget cap (rewards + Prolific's fee and VAT + bonuses)")
    known = await provider.records.plan(run_id)
    if known is not None:  # a run planned before keeps its settings and publishes again
        await provider.records.set_publishing(run_id, publishing=True)
        return known.model_copy(update={"publishing": True})
    return await provider.records.save_plan(StudyPlan(
        run_id=run_id, account=provider.account, task_module=task_module, reward_cents=rules.cents(task.reward),
        budget_cents=budget_cents, estimated_minutes=estimated_minutes, max_minutes=estimated_minutes * 3 + 10,
    ))


@asynccontextmanager
async def study_manager(
    settings: Settings, store: Store, runs: Runs, ownership: Ownership
) -> AsyncIterator[StudyManager | None]:
    """The study manager for the app's life, when there is a Prolific to recruit on (the built-in one, or
    Prolific's with a token); the runs named by `prolific_publish` are planned first (built-in only)."""
    if not builtin_prolific(settings) and not settings.prolific_api_token:
        yield None
        return
    provider = prolific_provider(settings, store)
    manager = StudyManager(
        provider=provider, store=store, runs=runs, public_url=settings.public_url,
        interval_s=settings.mturk_sync_s, fence=ownership.holds,
    )
    try:
        for row in await named_runs(store, settings.prolific_publish, "prolific_publish"):
            if provider.is_live:
                raise ValueError("runs on live Prolific are planned by `parley run --provider prolific --live`, "
                                 "which confirms the spend")
            await plan_run(
                provider, run_id=row.id, task_module=row.task_module, task=load_task(row.task_module, row.options),
                budget_cents=rules.cents(settings.prolific_budget),
            )
        async with tended(manager, ownership.on_change):
            yield manager
    finally:
        await provider.aclose()
