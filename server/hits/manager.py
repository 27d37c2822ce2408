"""The HIT manager: one background loop that keeps every published run's HITs right.

Each pass (at start-up, then every `interval_s` or sooner when a run reports a conversation end or a
departure): one ListHITs sweep; each run's records brought in line with it (recovering HITs created just
before a crash); closed HITs settled; agents moved to what MTurk says; then open HITs topped up to the
run's target, or expired when the run is stopped or its target is met. The first pass is the start-up
reconciliation: after a SIGKILL, no HIT of a run stays open and forgotten. The loop itself, its wake-ups and
its per-run error handling are shared with the study manager (server/tending.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from server.fence import Fence, always
from server.hits import plan as rules
from server.hits.compensation import Compensations
from server.hits.forms import FormRuns
from server.hits.gold import GoldChecks
from server.hits.publisher import Publisher
from server.hits.quals import Qualifications, at_cap_name, onboarding_failed_name
from server.hits.review import Review
from server.hits.sync import AgentMoves, AssignmentSync, StoreMoves
from server.providers.mturk import MTurk
from server.registry import Runs
from server.runner import Run
from server.states import LIVE_STATES, AgentState, HitStatus, RunStatus
from server.store import AgentRow, Store
from server.store.hits import HTML, BudgetExceeded, HitLimitReached, HitPlan, HitStore
from server.tending import Tending

log = logging.getLogger(__name__)
S = AgentState
ARRIVING = frozenset({S.JOINED, S.ONBOARDING, S.WAITING})


class RunMoves:
    """Agent moves through the run when this process serves it (so the page hears), else the store."""

    def __init__(self, runs: Runs, store: Store) -> None:
        self.runs = runs
        self.fallback = StoreMoves(store)

    async def move(self, run_id: str, agent: AgentRow, state: AgentState, text: str | None = None) -> bool:
        run = self.runs.get(run_id)
        if run is None:
            return await self.fallback.move(run_id, agent, state, text)
        await run.load_agent(agent)  # agents past their task are loaded lazily
        if state == S.RETURNED and run.states[agent.id] in LIVE_STATES:
            await run.depart(agent.id, state, text)
            return True
        return await run.move(agent.id, state, text=text)


def need_of(run: Run) -> rules.Need:
    caps = run.task.caps
    return rules.Need(
        target=caps.target_conversations, completed=run.host.completed, live_conversations=len(run.host.live),
        humans_waiting=sum(1 for s in run.states.values() if s in ARRIVING), roles=len(run.task.roles),
        max_conversations=caps.max_conversations,
    )


class HitManager(Tending):
    def __init__(
        self, *, mturk: MTurk, store: Store, runs: Runs | None, public_url: str, interval_s: float = 10.0,
        fence: Fence = always, locate: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        super().__init__("HIT manager", name="hits", interval_s=interval_s)
        self.mturk = mturk
        self.store = store
        self.runs = runs
        self.hit_store = HitStore(store)
        self.quals = Qualifications(mturk, self.hit_store)
        self.fence = fence  # tend only the runs this process owns (server/ownership.py)
        self.locate = locate  # where the built-in sandbox is served now, when another process may serve it
        self.publisher = Publisher(mturk, self.hit_store, self.quals, public_url, fence)
        self.forms = FormRuns(self.publisher, self.hit_store, store)
        moves: AgentMoves = RunMoves(runs, store) if runs is not None else StoreMoves(store)
        self.sync = AssignmentSync(mturk, self.hit_store, store, moves)
        self.review = Review(mturk, self.hit_store, store, self.quals, self.sync)
        self.compensations = Compensations(mturk, self.hit_store, store, self.quals)
        self.gold = GoldChecks(store, self.review, self.quals)
        self.passes = 0
        self._lock = asyncio.Lock()
        self._observed: set[str] = set()
        # Held weakly: a worker's lock lives while a check holds or awaits it, not for every worker ever seen.
        self._worker_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._over_budget: set[str] = set()

    # ---- one pass -----------------------------------------------------------------------------

    async def tend(self) -> None:
        async with self._lock:
            self._observe_runs()
            endpoint = await self.locate() if self.locate is not None else None
            if endpoint:
                self.mturk.retarget(endpoint)
            plans = [p for p in await self.hit_store.plans(self.mturk.account) if self.fence(p.run_id)]
            await self._tend_gold({p.run_id for p in plans})
            if not plans:
                self.passes += 1
                return
            listed_at = time.time()
            listing = await self.publisher.listing({p.run_id for p in plans})
            await self.tend_runs(plans, lambda plan: plan.run_id,
                                 lambda plan: self._tend_run(plan, listing.get(plan.run_id, []), listed_at))
            await self.compensations.settle_open({p.run_id for p in plans})
            self.passes += 1

    async def _tend_run(self, plan: HitPlan, hits: list[dict[str, Any]], listed_at: float) -> None:
        run = self.runs.get(plan.run_id) if self.runs is not None else None
        row = await self.store.get_run(plan.run_id)
        served = plan.publishing and run is not None and row is not None and row.status == RunStatus.ACTIVE
        if plan.question == HTML:  # one HIT per item: the form runs' own pass
            task = run.task if run is not None else await self.forms.task_of(plan.run_id)
            await self.forms.tend(plan, task, hits, publishing=served)
            if served:
                await self.publisher.keep_alive(plan, await self.hit_store.hits(plan.run_id), time.time())
            return
        records = await self.publisher.refresh(plan, hits)
        await self.sync.settle(records)
        await self.sync.agents(plan.run_id, listed_at)
        active = served and run is not None and not run.host.target_met()
        want = rules.open_target(need_of(run), plan.overbook) if active and run is not None else 0
        live = await self.hit_store.hits(plan.run_id, statuses=(HitStatus.OPEN, HitStatus.CREATING))
        if active:
            await self.publisher.keep_alive(plan, live, time.time())
        if len(live) > want:
            for record in sorted(live, key=lambda r: r.slot, reverse=True)[: len(live) - want]:
                await self.publisher.expire(record)
        elif len(live) < want and run is not None:
            try:
                await self.publisher.publish(plan, run.task, want - len(live))
                self._over_budget.discard(plan.run_id)
            except BudgetExceeded as exc:
                if plan.run_id not in self._over_budget:
                    log.warning("HIT manager: not publishing more: %s", exc)
                self._over_budget.add(plan.run_id)
            except HitLimitReached:
                pass  # all the HITs `parley run --hits` allows are out: the run publishes no more

    async def _tend_gold(self, published: set[str]) -> None:
        """Gold checks' consequences for every run served here whose task declares a GoldPolicy."""
        for run in self.runs or ():
            if run.task.gold is None or not self.fence(run.id):
                continue
            try:
                await self.gold.tend(run.id, run.task, on_mturk=run.id in published)
            except Exception:
                log.exception("HIT manager: gold checks of run %s failed this pass", run.id)

    # ---- what runs tell us --------------------------------------------------------------------

    def _observe_runs(self) -> None:
        for run in self.runs or ():
            if run.id not in self._observed:
                run.observers.append(self._observe)
                self._observed.add(run.id)

    async def _observe(self, run: Run, kind: str, payload: dict[str, Any]) -> None:
        """Runner events; MTurk calls go to background tasks so a worker's flow never waits on MTurk."""
        if kind == "conversation":
            self.wake()
        elif kind == "onboarding" and not payload["passed"]:
            self.supervisor.spawn(self._onboarding_failed(run, payload["worker_id"]), name="onboarding-qual")
        elif kind == "state":
            if payload["state"] not in LIVE_STATES:
                self.wake()
            self.supervisor.spawn(self._push_caps(run, payload["worker_id"]), name="cap-qual")

    async def _onboarding_failed(self, run: Run, worker_id: str) -> None:
        result = await self.store.onboarding_result(worker_id, task_name=run.task.name)
        if result is not None and not result.passed and result.attempts >= run.task.caps.onboarding_attempts:
            await self.quals.grant(await self.quals.type_id(onboarding_failed_name(run.task.name)), worker_id)

    async def _push_caps(self, run: Run, worker_id: str) -> None:
        """Hide the run's HITs from a worker at a per-worker cap, so MTurk never lets them accept one we refuse."""
        if await self.hit_store.plan(run.id) is None:
            return
        caps = run.task.caps
        async with self._worker_locks.setdefault(f"{run.id}/{worker_id}", asyncio.Lock()):
            total, live = await self.store.worker_agents_in_run(worker_id, run_id=run.id)
            type_id = await self.quals.type_id(at_cap_name(run.id))
            if live >= caps.per_worker_concurrent or total >= caps.per_worker_total:
                await self.quals.grant(type_id, worker_id)
            else:
                await self.quals.revoke(type_id, worker_id)

    # ---- requester actions --------------------------------------------------------------------

    async def stop(self, run_id: str) -> None:
        """Stop publishing the run; the next pass expires its open HITs."""
        await self.hit_store.update_plan(run_id, publishing=False)
        self.wake()
