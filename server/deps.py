"""FastAPI dependencies as Annotated aliases, so route signatures read as prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.registry import Runs
from server.runner import Run
from server.settings import Settings
from server.store import Store


class NotFound(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def _runs(request: Request) -> Runs:
    runs: Runs = request.app.state.runs
    return runs


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _run(run_id: str, runs: Annotated[Runs, Depends(_runs)]) -> Run:
    run = runs.get(run_id)
    if run is None:
        raise NotFound("unknown_run", f"There is no task run {run_id!r} on this server. Check the HIT's link.")
    return run


RunsDep = Annotated[Runs, Depends(_runs)]
SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[Store, Depends(_store)]
RunDep = Annotated[Run, Depends(_run)]
