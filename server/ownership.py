"""One owner per run: this process's identity, the leases it holds, and the runs it serves because of them.

Every `lease_s / 3` seconds the ownership pass
1. renews this instance's row (`seen_until`) and every lease it holds, in two statements;
2. stops serving any run whose lease it no longer holds (another instance took it over);
3. takes the lease of every run that needs an owner and has none alive (a new run registered by
   `parley run`, or a run whose owner died) and serves it: its recovery, matcher, worlds, timers and HIT
   manager passes run here from then on;
4. brings the status of the runs it serves up to date (`parley stop` from any terminal);
5. lets go of runs that need nothing more (stopped, no HIT left to follow).

**Fencing.** A lease is trusted only until `renewed_at + lease_s - margin` on this process's monotonic clock,
where `renewed_at` is when the renewing statement was *sent*. Another instance takes the run over only once
`lease_until` (that same send time + `lease_s`, by the wall clock) has passed, so a process that is paused
or cut off from the database stops acting `margin` seconds before anyone else may start. `holds(run_id)` is
the fence every effect outside the process checks first: state moves (`Run.move`) and HIT calls
(`Publisher`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

from server.registry import Runs
from server.states import RunStatus
from server.store import Store
from server.store.hits import HitStore
from server.store.leases import InstanceRow, LeaseStore
from server.supervisor import Supervisor

log = logging.getLogger(__name__)


def new_instance_id(given: str = "") -> str:
    return given or f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"


class Ownership:
    """The runs this instance owns. `holds(run_id)` is the fence; `start()` and `aclose()` bound its life."""

    def __init__(
        self, *, store: Store, runs: Runs, instance: InstanceRow, lease_s: float,
        serves_sandbox: Callable[[], bool] | None = None,
        wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.runs = runs
        self.instance = instance
        # Whether this process serves the built-in sandbox of its data directory (it takes it over when the
        # process that did is gone); recorded on the instance row, where the CLI and other instances look.
        self._serves_sandbox = serves_sandbox
        self.lease_s = lease_s
        self.margin = lease_s / 5
        self.leases = LeaseStore(store)
        self.hit_store = HitStore(store)
        self._wall = wall
        self._monotonic = monotonic
        self._valid: dict[str, float] = {}  # run id -> monotonic time until which this process may act on it
        self.supervisor = Supervisor("ownership")
        self.on_change: list[Callable[[], Awaitable[None] | None]] = []
        self.passes = 0

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def interval_s(self) -> float:
        return self.lease_s / 3

    def holds(self, run_id: str) -> bool:
        return self._valid.get(run_id, 0.0) > self._monotonic()

    def held(self) -> set[str]:
        now = self._monotonic()
        return {run_id for run_id, until in self._valid.items() if until > now}

    async def sandbox_endpoint(self) -> str | None:
        """The built-in sandbox's requester endpoint: this process's own when it serves it, else the live
        instance's that does (None when none does: the next pass looks again)."""
        if self.instance.sandbox:
            return self.instance.url.rstrip("/") + "/sandbox/mturk"
        for other in await self.leases.live_instances(self._wall()):
            if other.sandbox:
                return other.url.rstrip("/") + "/sandbox/mturk"
        return None

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this instance, take and serve what needs an owner, then keep at it in the background."""
        self.instance.started_at = self._wall()
        self.instance.seen_until = self.instance.started_at + self.lease_s
        self.instance.sandbox = self._serves_sandbox is not None and self._serves_sandbox()
        await self._retire_predecessors()
        await self.leases.register(self.instance)
        log.info("instance %s listening at %s", self.id, self.instance.url)
        await self.tend()
        self.supervisor.spawn(self._loop(), name="leases")

    async def aclose(self) -> None:
        """Stop renewing, stop serving, and hand every lease back at once (another instance need not wait)."""
        await self.supervisor.aclose()
        await self.runs.aclose()
        self._valid.clear()
        try:
            await self.leases.retire(self.id)
        except Exception:
            log.exception("instance %s could not hand its leases back; they lapse in %.0fs", self.id, self.lease_s)

    async def _retire_predecessors(self) -> None:
        """An instance recorded at this very host and listening address is dead: this process holds that
        address now. Its leases are handed back at once, so a restarted server (a crash, a deploy that
        keeps the address) continues its runs without waiting for their leases to lapse."""
        for old in await self.leases.instances_at(self.instance.host, url=self.instance.url):
            if old.id != self.id:
                log.info("instance %s replaces %s at %s: its runs are taken over now", self.id, old.id, old.url)
                await self.leases.retire(old.id)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tend()
            except Exception:
                log.exception("ownership pass of instance %s failed; next in %.1fs", self.id, self.interval_s)
                await self._drop_lapsed()

    # ---- one pass -----------------------------------------------------------------------------

    async def tend(self) -> None:
        changed = await self._renew()
        wanted = await self._needing_owner()  # read once a pass: claiming and letting go both use it
        changed |= await self._claim(wanted)
        await self._refresh_statuses()
        await self._release_finished(wanted)
        self.passes += 1
        if changed:
            for callback in list(self.on_change):
                result = callback()
                if result is not None:
                    await result

    async def _renew(self) -> bool:
        sent_wall, sent = self._wall(), self._monotonic()
        if self._serves_sandbox is not None:
            self.instance.sandbox = self._serves_sandbox()
        self.instance.seen_until = sent_wall + self.lease_s
        if not await self.leases.heartbeat(self.id, self.instance.seen_until, sandbox=self.instance.sandbox):
            await self.leases.register(self.instance)
        held = await self.leases.renew(self.id, sent_wall + self.lease_s)
        valid = sent + self.lease_s - self.margin
        lost = set(self._valid) - held
        for run_id in held:
            self._valid[run_id] = valid
        for run_id in lost:
            log.warning("instance %s lost the lease of run %s: another instance serves it now", self.id, run_id)
            await self._let_go(run_id)
        return bool(lost)

    async def _drop_lapsed(self) -> None:
        """After a failed pass: stop serving every run whose lease can no longer be trusted."""
        now = self._monotonic()
        for run_id in [r for r, until in self._valid.items() if until <= now]:
            log.warning("instance %s could not renew the lease of run %s in time; it stops serving it", self.id, run_id)
            await self._let_go(run_id)

    async def _let_go(self, run_id: str) -> None:
        self._valid.pop(run_id, None)
        await self.runs.drop(run_id)

    async def _claim(self, wanted: set[str]) -> bool:
        now = self._wall()
        live = {i.id for i in await self.leases.live_instances(now)}
        changed = False
        for run_id, (owner, lease_until) in (await self.leases.leases()).items():
            if run_id not in wanted or owner == self.id:
                continue
            if owner and lease_until >= now and owner in live:
                continue  # alive and in time: its run
            sent_wall, sent = self._wall(), self._monotonic()
            if not await self.leases.acquire(run_id, owner=self.id, now=sent_wall, until=sent_wall + self.lease_s):
                continue
            self._valid[run_id] = sent + self.lease_s - self.margin
            previous = f" from {owner}" if owner else ""
            log.info("instance %s took the lease of run %s%s", self.id, run_id, previous)
            changed = True
            await self._serve(run_id)
        return changed

    async def _needing_owner(self) -> set[str]:
        """Runs someone must tend: active ones, and stopped ones with HITs or work still to follow."""
        active = {row.id for row in await self.store.runs(status=RunStatus.ACTIVE)}
        return active | await self.hit_store.unsettled_runs()

    async def _serve(self, run_id: str) -> None:
        row = await self.store.get_run(run_id)
        if row is None or row.status != RunStatus.ACTIVE:
            return  # a stopped run with HITs to follow: the HIT manager tends it, no worker is served
        try:
            await self.runs.start(row.id, row.task_module, row.options)
        except Exception:
            log.exception("instance %s could not serve run %s (%s); it keeps the lease so no other instance "
                          "tries in a loop", self.id, row.id, row.task_module)

    async def _refresh_statuses(self) -> None:
        for run in list(self.runs):
            row = await self.store.get_run(run.id)
            if row is not None and row.status != run.row.status:
                log.info("run %s is now %s", run.id, row.status)
                await run.set_status(RunStatus(row.status))

    async def _release_finished(self, wanted: set[str]) -> None:
        for run_id in self.held() - wanted:
            run = self.runs.get(run_id)
            if run is not None and run.has_work():
                continue  # stopped, but conversations it serves are still going
            self._valid.pop(run_id, None)
            await self.runs.drop(run_id)
            with contextlib.suppress(Exception):
                await self.leases.release(run_id, owner=self.id)
            log.info("instance %s released run %s: nothing left to do", self.id, run_id)
