"""One background loop that keeps a provider's runs right: the HIT manager's and the study manager's.

A subclass says what one pass does (`tend`, one run at a time through `tend_runs`); `Tending` runs the
passes: the first at `start()` (the start-up reconciliation, after which `ready` is set), then one every
`interval_s`, or sooner when `wake()` is called (a conversation ended, a worker left, a run changed owner).
A pass that fails is logged and the next one comes as usual; one run's failure does not stop the others'.
Every task it starts belongs to its supervisor, so `aclose()` ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

from server.fence import LeaseLost
from server.store import Store, TaskRun
from server.supervisor import Supervisor

log = logging.getLogger(__name__)
P = TypeVar("P")


class Tending:
    """`what` names the loop in logs ("HIT manager"), `name` its supervisor's tasks ("hits")."""

    def __init__(self, what: str, *, name: str, interval_s: float) -> None:
        self.what = what
        self.interval_s = interval_s
        self.supervisor = Supervisor(name)
        self.ready = asyncio.Event()  # set after the first full pass (the start-up reconciliation)
        self._wake = asyncio.Event()

    async def tend(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.supervisor.spawn(self._loop(), name="tend")

    async def aclose(self) -> None:
        await self.supervisor.aclose()

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tend()
                self.ready.set()
            except Exception:
                log.exception("%s pass failed; next pass in %.0fs", self.what, self.interval_s)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can drop a cancellation that arrives as
            # the wait ends, and this loop would then outlive its supervisor's shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            self._wake.clear()

    async def tend_runs(
        self, plans: Iterable[P], run_id: Callable[[P], str], tend: Callable[[P], Awaitable[None]]
    ) -> None:
        """`tend(plan)` for each run's plan: a run another instance took over is left to it, a run that fails is
        logged, and either way the pass goes on with the next run."""
        for plan in plans:
            try:
                await tend(plan)
            except LeaseLost as exc:
                log.warning("%s: %s; left to its new owner", self.what, exc)
            except Exception:
                log.exception("%s: run %s failed this pass", self.what, run_id(plan))


T = TypeVar("T", bound=Tending)


@contextlib.asynccontextmanager
async def tended(manager: T, on_change: list[Callable[[], Awaitable[None] | None]]) -> AsyncIterator[T]:
    """Run `manager`'s passes for the app's life; a run taken over or let go (`on_change`) wakes it at once."""
    on_change.append(manager.wake)
    manager.start()
    try:
        yield manager
    finally:
        on_change.remove(manager.wake)
        await manager.aclose()


async def named_runs(store: Store, run_ids: Iterable[str], setting: str) -> list[TaskRun]:
    """The runs a setting names for publishing at start-up; a name that is no run of the database is refused."""
    rows = []
    for run_id in run_ids:
        row = await store.get_run(run_id)
        if row is None:
            raise ValueError(f"{setting} names run {run_id!r}, which is not a run of this database")
        rows.append(row)
    return rows
