"""FastAPI dependencies as Annotated aliases, so route signatures read as prose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from server.registry import Runs
from server.runner import Run
from server.settings import Settings
from server.store import Store
from server.tasks import load_task
from worlds.base import Task


class NotFound(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def unknown_run(run_id: str) -> NotFound:
    return NotFound("unknown_run", f"There is no task run {run_id!r} on this server. Check the HIT's link.")


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
        raise unknown_run(run_id)
    return run


@dataclass(frozen=True)
class RunTask:
    """A run's id and task, for what any instance serves (the task page, its info, its fragments), whether
    it owns the run or another instance does (with several instances, `PARLEY_REDIS_URL`)."""

    id: str
    task: Task


async def _run_task(run_id: str, request: Request) -> RunTask:
    run = request.app.state.runs.get(run_id)
    if run is not None:
        return RunTask(run.id, run.task)
    elsewhere: dict[str, RunTask] = request.app.state.tasks_elsewhere
    if run_id in elsewhere:
        return elsewhere[run_id]
    row = await request.app.state.store.get_run(run_id) if request.app.state.relay.shared else None
    if row is None or not row.owner:
        raise unknown_run(run_id)
    elsewhere[run_id] = RunTask(row.id, load_task(row.task_module, row.options))
    return elsewhere[run_id]


RunsDep = Annotated[Runs, Depends(_runs)]
SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[Store, Depends(_store)]
RunDep = Annotated[Run, Depends(_run)]
RunTaskDep = Annotated[RunTask, Depends(_run_task)]
