"""What main.py calls to bring MTurk in: mount the built-in sandbox, run the HIT manager for the app's life.

Settings: mturk_endpoint_url, mturk_sync_s, mturk_publish, mturk_budget_usd (see server/settings.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from server.hits import HitManager, publish_run
from server.ownership import Ownership
from server.providers.mturk import MTurk, endpoint_for
from server.registry import Runs
from server.sandbox import Sandbox, build_sandbox
from server.sandbox_proxy import install_sandbox_proxy
from server.settings import Settings
from server.store import Store
from server.tasks import load_task
from server.tending import named_runs, tended

log = logging.getLogger(__name__)


def mount_sandbox(app: FastAPI, settings: Settings) -> Sandbox | None:
    """Serve the built-in MTurk under /sandbox when the provider is `builtin`; never with real MTurk."""
    if settings.provider != "builtin":
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sandbox = build_sandbox(state_path=settings.data_dir / "sandbox.json")
    app.include_router(sandbox.router)
    install_sandbox_proxy(app)  # on an instance that does not hold it, the sandbox is its holder's, forwarded
    return sandbox


def mturk_client(settings: Settings) -> MTurk:
    endpoint = endpoint_for(
        settings.provider, public_url=settings.public_url, endpoint_url=settings.mturk_endpoint_url
    )
    return MTurk.connect(endpoint, builtin=settings.provider == "builtin")


@asynccontextmanager
async def hit_manager(
    settings: Settings, store: Store, runs: Runs, ownership: Ownership
) -> AsyncIterator[HitManager]:
    """The HIT manager for the app's life: its first pass reconciles with MTurk, then it tends every run.

    The pass runs in the background: with the built-in sandbox, MTurk is this very server, which only
    answers once start-up is over (the provider's retries wait for it).
    """
    mturk = mturk_client(settings)
    moves_with_sandbox = settings.provider == "builtin" and not settings.mturk_endpoint_url
    manager = HitManager(
        mturk=mturk, store=store, runs=runs, public_url=settings.public_url,
        interval_s=settings.mturk_sync_s, fence=ownership.holds,
        locate=ownership.sandbox_endpoint if moves_with_sandbox else None,
    )
    for row in await named_runs(store, settings.runs_to_publish, "mturk_publish"):
        if mturk.is_live:
            raise ValueError("live MTurk runs are published only by `parley run --live`, which confirms the spend")
        await publish_run(
            manager.hit_store, run_id=row.id, account=mturk.account, task=load_task(row.task_module, row.options),
            budget_usd=settings.mturk_budget_usd, live=False, public_url=settings.public_url,
            lifetime_s=settings.hit_lifetime_s,
        )
    async with tended(manager, ownership.on_change):
        yield manager
