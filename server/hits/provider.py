"""MTurk behind the provider seam (server/providers/base.py): `MTurkProvider`, built on the HIT manager.

A run is published as HITs (one per slot), a submission is an assignment, a bonus goes through `SendBonus`
with a `UniqueRequestToken`, the block list is the soft-block qualification. The client it rests on is
server/providers/mturk.py, which knows nothing of the HIT manager.
"""

from __future__ import annotations

import logging
from typing import Any

from server.hits.manager import HitManager
from server.hits.plan import dollars, fee_cents
from server.providers.base import (
    MTURK_WORDS,
    Bonus,
    BudgetExceeded,
    Cost,
    Feature,
    Recruitment,
    RecruitmentSpec,
    RejectionCategory,
    Submission,
    SubmissionStatus,
    Words,
)
from server.providers.mturk import WORKED_ON
from server.states import BonusStatus, HitStatus
from server.store.hits import HIT_FREE, HitPlan
from server.store.hits import BudgetExceeded as OverBudget

log = logging.getLogger(__name__)


class MTurkProvider:
    """MTurk as a `Provider` (server/providers/base.py), over the HIT manager's parts: a run is published as
    HITs (one per slot; the recruitment is the run's HIT set), a submission is an assignment, a bonus goes
    through `SendBonus` with a `UniqueRequestToken`, the block list is the soft-block qualification.

    The HIT manager keeps doing its own passes; this adapter is what review, the CLI and anything written
    for every provider call.
    """

    words: Words = MTURK_WORDS
    supports = frozenset(Feature) - {Feature.IN_PROGRESS_LISTED, Feature.REJECTION_CATEGORIES, Feature.VAT}

    def __init__(self, manager: HitManager) -> None:
        self.manager = manager
        self.account = manager.mturk.account
        self.is_live = manager.mturk.is_live

    async def aclose(self) -> None:
        """Nothing to close: boto3's client holds no connection between calls."""

    # ---- money --------------------------------------------------------------------------------

    def place_cost(self, reward_cents: int) -> Cost:
        return Cost(paid_cents=reward_cents, fee_cents=fee_cents(reward_cents))

    def bonus_cost(self, amount_cents: int) -> Cost:
        return self.place_cost(amount_cents)

    async def spent_cents(self, run_id: str) -> int:
        return await self.manager.hit_store.spend(run_id)

    # ---- recruiting ---------------------------------------------------------------------------

    async def publish(self, spec: RecruitmentSpec, places: int, *, budget_cents: int = 0) -> Recruitment:
        """Publish HITs until the run has `places` that may still bring work (open, taken or worked)."""
        hit_store = self.manager.hit_store
        plan = await hit_store.plan(spec.run_id)
        if plan is None:
            plan = await hit_store.save_plan(HitPlan(
                run_id=spec.run_id, account=self.account, budget_cents=budget_cents, reward_cents=spec.reward_cents,
                assignment_duration_s=spec.max_minutes * 60,
            ))
        elif plan.account != self.account:
            raise ValueError(f"run {spec.run_id} publishes on {plan.account}, not {self.account}: use a new run id")
        elif not plan.publishing:
            raise ValueError(f"run {spec.run_id} was told to stop publishing; publish it again to resume")
        task = await self.manager.forms.task_of(spec.run_id)
        if task is None:
            raise ValueError(f"run {spec.run_id} has no task this database can load, so its HITs have no text")
        more = places - sum(1 for r in await hit_store.hits(spec.run_id) if r.status not in HIT_FREE)
        if more > 0:
            try:
                await self.manager.publisher.publish(plan, task, more)
            except OverBudget as exc:
                raise BudgetExceeded(str(exc)) from None
        return await self._recruitment(spec.run_id)

    async def expire(self, run_id: str) -> None:
        """Stop publishing the run and close its open HITs now; workers on one may still submit."""
        await self.manager.hit_store.update_plan(run_id, publishing=False)
        for record in await self.manager.hit_store.hits(run_id, statuses=(HitStatus.OPEN,)):
            await self.manager.publisher.expire(record)

    async def recruitments(self) -> list[Recruitment]:
        return [await self._recruitment(plan.run_id) for plan in await self.manager.hit_store.plans(self.account)]

    async def _recruitment(self, run_id: str) -> Recruitment:
        records = [r for r in await self.manager.hit_store.hits(run_id) if r.status not in HIT_FREE]
        plan = await self.manager.hit_store.plan(run_id)
        opened = any(r.status == HitStatus.OPEN for r in records)
        return Recruitment(
            id=(plan.hit_type_id if plan else "") or run_id, run_id=run_id, status="open" if opened else "closed",
            places=len(records), taken=sum(1 for r in records if r.status in WORKED_ON),
            open=opened,
        )

    async def submissions(self, run_id: str) -> list[Submission]:
        """The run's handed-in assignments as MTurk lists them (MTurk lists no assignment still being worked)."""
        found = []
        for record in await self.manager.hit_store.hits(run_id):
            if record.hit_id:
                async for assignment in self.manager.mturk.pages(
                    "ListAssignmentsForHIT", "Assignments", HITId=record.hit_id,
                ):
                    found.append(_submission(assignment))
        return found

    # ---- review -------------------------------------------------------------------------------

    async def _submission(self, assignment_id: str) -> Submission:
        return _submission((await self.manager.mturk.call("GetAssignment", AssignmentId=assignment_id))["Assignment"])

    async def approve(self, submission_id: str, feedback: str = "") -> Submission:
        await self.manager.review.approve(submission_id, feedback)
        return await self._submission(submission_id)

    async def reject(self, submission_id: str, reason: str, category: RejectionCategory) -> Submission:
        """MTurk has no rejection categories: the worker reads `reason` alone."""
        await self.manager.review.reject(submission_id, reason)
        return await self._submission(submission_id)

    async def bonus(
        self, submission_id: str, amount_cents: int, reason: str, *, key: str, budget_cents: int = 0
    ) -> Bonus:
        """Pay once per `key` (a UniqueRequestToken). The cap is the run's plan's (`budget_cents` is not used)."""
        try:
            paid = await self.manager.review.bonus(submission_id, dollars(amount_cents), reason, key=key)
        except OverBudget as exc:
            raise BudgetExceeded(str(exc)) from None
        return Bonus(
            key=key, submission_id=submission_id, worker_id=paid.worker_id,
            cost=Cost(paid.amount_cents, paid.fee_cents), paid=paid.status == BonusStatus.PAID,
            provider_ids=(paid.token,),
        )

    async def block(self, worker_id: str, reason: str) -> None:
        await self.manager.review.block(worker_id, reason)

    async def unblock(self, worker_id: str) -> None:
        await self.manager.review.unblock(worker_id)

    async def exclude(self, name: str, worker_id: str) -> None:
        """Grant the qualification `name`: Parley's HITs require its absence (`DoesNotExist`)."""
        quals = self.manager.quals
        await quals.grant(await quals.type_id(name), worker_id)


ASSIGNMENT_STATUSES = {
    "Submitted": SubmissionStatus.AWAITING_REVIEW, "Approved": SubmissionStatus.APPROVED,
    "Rejected": SubmissionStatus.REJECTED,
}


def _submission(assignment: dict[str, Any]) -> Submission:
    status = str(assignment["AssignmentStatus"])
    return Submission(
        id=str(assignment["AssignmentId"]), recruitment_id=str(assignment["HITId"]),
        worker_id=str(assignment["WorkerId"]), status=ASSIGNMENT_STATUSES.get(status, SubmissionStatus.ACTIVE),
        provider_status=status,
    )
