"""app = create_app(settings): wiring only."""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from server import logs
from server.admin import install_admin
from server.admin.local_token import announce_dashboard, with_local_admin_token
from server.delivery import open_delivery
from server.errors import install_error_handlers
from server.metrics import InstanceMetrics
from server.migrations import check_schema
from server.mturk_wiring import hit_manager, mount_sandbox
from server.nul_guard import NulGuard
from server.ownership import Ownership, new_instance_id
from server.prolific_wiring import mount_prolific_sandbox, study_manager
from server.protocol import ErrorReply
from server.registry import Runs
from server.relay import Relay
from server.routes import assets, fragments, health, prolific, task, ws
from server.routes.task import FRONTEND
from server.sandbox import Sandbox
from server.security import SecurityHeaders
from server.settings import Settings
from server.store import Store
from server.store.leases import InstanceRow
from server.tokens import TokenSigner

log = logging.getLogger("parley")

# Every route may answer with Parley's one error shape; documented so API clients (and schema checks) know.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorReply, "description": text}
    for status, text in {
        400: "Bad request", 401: "Credential missing or invalid", 403: "Refused", 404: "Not found",
        409: "Conflicts with the current state", 422: "Invalid body or parameters",
        429: "Too many attempts: retry after the time given", 500: "Server fault",
        503: "Served by another Parley process on this data directory",
    }.items()
}


def tune_gc(thresholds: str) -> None:
    """Freeze what start-up made (modules, tasks, the app) out of the collector's way, and collect less
    often: a full collection walks every live object, and a server with thousands of sockets has many."""
    if not thresholds.strip():
        return
    try:
        gen0, gen1, gen2 = (int(part) for part in thresholds.split(","))
    except ValueError:
        raise ValueError(
            f"PARLEY_GC_THRESHOLDS must be three integers like 200000,50,1000, not {thresholds!r}"
        ) from None
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)


def uvicorn_address(argv: list[str]) -> dict[str, object]:
    """`--host` / `--port` given on the command line of uvicorn (`uvicorn server.main:app --port 8125`) or of
    Parley's `python -m server.serving --port 8125`, so the listening address is known before uvicorn binds
    it: the app is built, and started, before that."""
    started_by = Path(argv[0]) if argv else Path()
    if "uvicorn" not in started_by.parts and started_by.name != "uvicorn" and started_by.parts[-2:] != (
        "server", "serving.py"
    ):
        return {}
    found: dict[str, object] = {}
    for flag, key in (("--host", "host"), ("--port", "port")):
        for i, arg in enumerate(argv):
            if arg == flag and i + 1 < len(argv):
                found[key] = argv[i + 1]
            elif arg.startswith(flag + "="):
                found[key] = arg.split("=", 1)[1]
    return found


def create_app(settings: Settings | None = None) -> FastAPI:
    if settings is None:
        settings = Settings()
        given = uvicorn_address(sys.argv)
        unset = {k: v for k, v in given.items() if k not in settings.model_fields_set}
        if unset:  # PARLEY_HOST / PARLEY_PORT win; else uvicorn's own flags say where this process listens
            settings = Settings.model_validate(unset)
    configured = settings
    settings = with_local_admin_token(settings)
    instance_id = new_instance_id(settings.instance_id)
    logs.configure(settings.log_level, settings.log_format, instance=instance_id)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await check_schema(settings.db_url)
        store = Store(settings.db_url)
        await store.open()
        signer = TokenSigner(await store.secret(), settings.token_ttl_s)
        runs = Runs(store=store, settings=settings, signer=signer)
        sandbox: Sandbox | None = app.state.sandbox
        ownership = Ownership(
            store=store, runs=runs, instance=_instance(settings, instance_id), lease_s=settings.lease_s,
            serves_sandbox=(lambda: sandbox.held) if sandbox is not None else None,
        )
        runs.fence = ownership.holds
        relay = Relay(
            open_delivery(instance_id, redis_url=settings.redis_url, prefix=settings.redis_prefix),
            runs=runs, store=store, heartbeat_s=settings.heartbeat_s, check_every_s=ownership.interval_s,
            serve_remote=lambda remote: ws.serve_socket(remote, app.state, relayed=True),
        )
        relay.handlers["join"] = task.join_relayed
        app.state.store, app.state.signer, app.state.runs, app.state.ownership = store, signer, runs, ownership
        app.state.relay, app.state.tasks_elsewhere = relay, {}
        try:
            await relay.start()
            await runs.register(settings.demo_runs)
            await ownership.start()  # serves every active run no live instance owns (after a restart: all)
            _announce(settings, runs)
            announce_dashboard(settings, local=settings.admin_token != configured.admin_token)
            tune_gc(settings.gc_thresholds)
            async with (
                hit_manager(settings, store, runs, ownership) as app.state.hits,
                study_manager(settings, store, runs, ownership) as app.state.studies,
            ):
                yield
        finally:
            await ownership.aclose()
            await relay.aclose()
            await store.close()
            if sandbox is not None:
                sandbox.release()
            if app.state.prolific_sandbox is not None:
                app.state.prolific_sandbox.release()

    app = FastAPI(title="Parley", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES)
    app.state.settings = settings
    app.state.metrics = InstanceMetrics(instance_id)  # this app's registry: apps in one process never collide
    install_error_handlers(app)
    install_admin(app, settings)
    app.include_router(health.router)
    app.include_router(task.router)
    app.include_router(fragments.router)
    app.include_router(assets.router)
    app.include_router(prolific.router)
    app.state.sandbox = mount_sandbox(app, settings)
    app.state.prolific_sandbox = mount_prolific_sandbox(app, settings)
    app.mount("/static", StaticFiles(directory=FRONTEND), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(NulGuard)
    app.add_middleware(ws.WorkerSocketRoute)  # added last: the outermost, so /ws frames skip the rest
    return app


def _instance(settings: Settings, instance_id: str) -> InstanceRow:
    return InstanceRow(
        id=instance_id, url=settings.instance_url or settings.listen_url, public_url=settings.public_url,
        host=socket.gethostname()[:255], pid=os.getpid(),
    )


def _announce(settings: Settings, runs: Runs) -> None:
    base = settings.public_url.rstrip("/")
    if settings.sandbox_enabled:
        log.info(
            "Built-in MTurk sandbox: open %s/sandbox/worker to accept and work HITs as any worker "
            "(runs published there: %s)", base, ", ".join(settings.runs_to_publish) or "none",
        )
    for run in runs:
        log.info(
            "Open the worker page of %s (%s) at %s/task/%s?assignmentId=A1&hitId=H1&workerId=W1&turkSubmitTo=",
            run.id, run.task.title, base, run.id,
        )


app = create_app()
