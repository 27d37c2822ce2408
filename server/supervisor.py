"""Owner of background tasks: nothing runs fire-and-forget, every failure is logged, shutdown reaps all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)
CANCEL_ROUNDS = 10
CANCEL_WAIT_S = 1.0


class Supervisor:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"supervisor {self.name} is closed")
        task = asyncio.create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel every task and wait for all of them to end. A task that swallows its cancellation (a
        library that catches it, or a wait that finished at the same moment) is cancelled again, so
        shutdown never hangs on one; one still running after `CANCEL_ROUNDS` is logged and left."""
        self._closed = True
        pending = set(self._tasks)
        for _ in range(CANCEL_ROUNDS):
            if not pending:
                return
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
        for task in pending:
            log.error("background task %s did not end after %d cancellations", task.get_name(), CANCEL_ROUNDS)
