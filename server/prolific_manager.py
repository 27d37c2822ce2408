"""The study manager: one background loop keeping every Prolific run's study right (the HIT manager's
counterpart for Prolific, speaking through the provider seam).

Each pass, for each planned run this process owns: its submissions are read, and returned, timed-out,
approved or rejected ones move their agents (so the page and the run hear of it); then, while the run is
active and short of its target, its study offers the places taken plus the open places the run wants
(the HIT manager's top-up rule), within the budget; otherwise its study is stopped. A stopped run that no
instance serves has its study stopped too. The first pass is the start-up reconciliation: a study made
just before a crash is adopted by its name, and a stopped run's study does not stay open. Each submission's
status as last seen is recorded (`prolific_submission`), so every instance and the CLI read the same.

The loop, its wake-ups and its per-run error handling are the HIT manager's (server/tending.py).
"""

from __future__ import annotations

import logging
from typing import Any

from server.fence import Fence, LeaseLost, always
from server.hits import plan as rules
from server.hits.manager import RunMoves, need_of
from server.hits.quals import onboarding_failed_name
from server.providers.base import BudgetExceeded, RecruitmentSpec, Submission, SubmissionStatus
from server.providers.prolific import NotRecruiting, ProlificProvider
from server.registry import Runs
from server.runner import Run
from server.states import LIVE_STATES, AgentState, RunStatus
from server.store import Store
from server.store.prolific import StudyPlan, SubmissionEntry
from server.tending import Tending
from worlds.base import Task

log = logging.getLogger(__name__)
GONE = {SubmissionStatus.RETURNED: AgentState.RETURNED, SubmissionStatus.TIMED_OUT: AgentState.EXPIRED}
REVIEWED = {SubmissionStatus.APPROVED: AgentState.APPROVED, SubmissionStatus.REJECTED: AgentState.REJECTED}


def spec_for(plan: StudyPlan, task: Task, public_url: str) -> RecruitmentSpec:
    return RecruitmentSpec(
        run_id=plan.run_id, title=task.title, description=task.description,
        task_url=f"{public_url.rstrip('/')}/task/{plan.run_id}", reward_cents=plan.reward_cents,
        estimated_minutes=plan.estimated_minutes, max_minutes=plan.max_minutes,
        excluded=(onboarding_failed_name(task.name),) if task.onboarding else (),
    )


class StudyManager(Tending):
    def __init__(
        self, *, provider: ProlificProvider, store: Store, runs: Runs, public_url: str, interval_s: float = 10.0,
        fence: Fence = always,
    ) -> None:
        super().__init__("study manager", name="studies", interval_s=interval_s)
        self.provider = provider
        self.store = store
        self.runs = runs
        self.public_url = public_url
        self.fence = fence
        self.moves = RunMoves(runs, store)
        self._over_budget: set[str] = set()
        self._observed: set[str] = set()

    async def tend(self) -> None:
        self._observe_runs()
        await self.tend_runs(await self.provider.records.plans(), lambda plan: plan.run_id, self._tend_or_close)

    async def _tend_or_close(self, plan: StudyPlan) -> None:
        if self.fence(plan.run_id):
            await self._tend_run(plan)
        else:
            await self._close_unowned(plan)

    def _observe_runs(self) -> None:
        for run in self.runs:
            if run.id not in self._observed:
                run.observers.append(self._observe)
                self._observed.add(run.id)

    async def _observe(self, run: Run, kind: str, payload: dict[str, Any]) -> None:
        """A participant who used up the task's onboarding attempts never sees its studies again."""
        if kind == "onboarding" and not payload["passed"] and await self.provider.plan(run.id) is not None:
            self.supervisor.spawn(self._onboarding_failed(run, payload["worker_id"]), name="onboarding-group")

    async def _onboarding_failed(self, run: Run, worker_id: str) -> None:
        result = await self.store.onboarding_result(worker_id, task_name=run.task.name)
        if result is not None and not result.passed and result.attempts >= run.task.caps.onboarding_attempts:
            await self.provider.exclude(onboarding_failed_name(run.task.name), worker_id)

    async def _close_unowned(self, plan: StudyPlan) -> None:
        """A run no instance serves because it was stopped (leases cover active runs and runs with HITs to
        follow) must not keep a study open. Stopping takes no lease: it only ever takes fewer people."""
        row = await self.store.get_run(plan.run_id)
        if row is not None and row.status != RunStatus.ACTIVE:
            await self.provider.expire(plan.run_id)

    async def _tend_run(self, plan: StudyPlan) -> None:
        run = self.runs.get(plan.run_id)
        row = await self.store.get_run(plan.run_id)
        submissions = await self.provider.submissions(plan.run_id)
        await self._sync(plan.run_id, submissions)
        served = plan.publishing and run is not None and row is not None and row.status == RunStatus.ACTIVE
        if run is None or not served or run.host.target_met():
            await self.provider.expire(plan.run_id)
            return
        want = rules.open_target(need_of(run), plan.overbook)
        taken = sum(1 for s in submissions if s.status not in GONE)
        if want <= 0:
            return
        if not self.fence(plan.run_id):
            raise LeaseLost(plan.run_id)
        try:
            await self.provider.publish(spec_for(plan, run.task, self.public_url), taken + want,
                                        budget_cents=plan.budget_cents)
            self._over_budget.discard(plan.run_id)
        except NotRecruiting:
            await self.provider.expire(plan.run_id)
        except BudgetExceeded as exc:
            if plan.run_id not in self._over_budget:
                log.warning("study manager: not offering more places: %s", exc)
            self._over_budget.add(plan.run_id)

    async def _sync(self, run_id: str, submissions: list[Submission]) -> None:
        """A participant who returned the place or ran out of Prolific's time has left the run; work approved
        or rejected on Prolific (by Parley's CLI or on Prolific's site) is approved or rejected here too."""
        for submission in submissions:
            await self.provider.records.seen(SubmissionEntry(
                id=submission.id, account=self.provider.account, run_id=run_id, study_id=submission.recruitment_id,
                participant_id=submission.worker_id, status=submission.provider_status, code=submission.code,
            ))
            gone, reviewed = GONE.get(submission.status), REVIEWED.get(submission.status)
            if gone is None and reviewed is None:
                continue
            agent = await self.store.agent_for_assignment(run_id, assignment_id=submission.id)
            if agent is None:
                continue
            state = AgentState(agent.state)
            if gone is not None and state in LIVE_STATES:
                await self.moves.move(run_id, agent, gone)
            elif reviewed is not None and state == AgentState.SUBMITTED:
                await self.moves.move(run_id, agent, reviewed)

    async def stop(self, run_id: str) -> None:
        """Stop recruiting for the run; the next pass stops its study."""
        await self.provider.records.set_publishing(run_id, publishing=False)
        self.wake()
