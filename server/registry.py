"""All task runs this process serves: created, loaded after a restart, found by id, stopped together."""

from __future__ import annotations

import logging
from typing import Any

from server.fence import Fence, always
from server.runner import Run
from server.settings import Settings
from server.store import Store
from server.tasks import load_task
from server.tokens import TokenSigner

log = logging.getLogger(__name__)


class Runs:
    def __init__(self, *, store: Store, settings: Settings, signer: TokenSigner) -> None:
        self.store = store
        self.settings = settings
        self.signer = signer
        self._runs: dict[str, Run] = {}
        # Whether this process may still act on a run (its lease); set by the ownership loop.
        self.fence: Fence = always

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def __iter__(self) -> Any:
        return iter(self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)

    async def start(self, run_id: str, task_module: str, options: dict[str, Any] | None = None) -> Run:
        """Create the run if it is new, then serve it (recovering whatever a previous process left)."""
        if run_id in self._runs:
            return self._runs[run_id]
        task = load_task(task_module, options)  # fails before anything is written
        row = await self.store.ensure_run(run_id, task_module=task_module, options=options or {})
        if row.task_module != task_module:
            raise ValueError(f"run {run_id!r} already exists for {row.task_module}, not {task_module}")
        run = Run(
            row, task, store=self.store, signer=self.signer, heartbeat_s=self.settings.heartbeat_s, fence=self.fence
        )
        await run.start()
        self._runs[run_id] = run
        log.info("run %s serving task %s", run_id, task.name)
        return run

    async def register(self, runs: dict[str, str]) -> None:
        """Record runs (run id -> task module) as active in the database, for whichever instance takes them.
        Each task is loaded first, so a bad module fails here, before anything is written."""
        for run_id, task_module in runs.items():
            load_task(task_module)
            row = await self.store.ensure_run(run_id, task_module=task_module, options={})
            if row.task_module != task_module:
                raise ValueError(f"run {run_id!r} already exists for {row.task_module}, not {task_module}")

    async def drop(self, run_id: str) -> None:
        """Stop serving one run here (its lease went elsewhere, or it needs nothing more). Durable state stays."""
        run = self._runs.pop(run_id, None)
        if run is not None:
            await run.stop()
            log.info("run %s no longer served by this process", run_id)

    async def aclose(self) -> None:
        for run in list(self._runs.values()):
            await run.stop()
        self._runs.clear()
