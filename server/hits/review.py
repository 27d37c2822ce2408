"""Review actions: approve (with feedback), reject (reason required), bonus (idempotent), soft block, notify.

Each acts on MTurk first, then writes what MTurk now says into the HIT record and the agent's state, so a
retry after a failure in between does the remaining part and nothing twice.
"""

from __future__ import annotations

from typing import Any

from server.hits import plan as rules
from server.hits.quals import SOFT_BLOCK, Qualifications
from server.hits.sync import AssignmentSync
from server.providers.mturk import MTurk, MTurkError
from server.states import AgentState, BonusStatus
from server.store import Store
from server.store.hits import BonusRecord, HitRecord, HitStore

MAX_FEEDBACK = 1024


class ReviewError(ValueError):
    """A review action Parley refuses before asking MTurk (e.g. a rejection without a reason)."""


class Review:
    def __init__(
        self, mturk: MTurk, hit_store: HitStore, store: Store, quals: Qualifications, sync: AssignmentSync
    ) -> None:
        self.mturk = mturk
        self.hit_store = hit_store
        self.store = store
        self.quals = quals
        self.sync = sync

    async def _assignment(self, assignment_id: str) -> tuple[dict[str, Any], HitRecord | None]:
        reply = await self.mturk.call("GetAssignment", AssignmentId=assignment_id)
        assignment: dict[str, Any] = reply["Assignment"]
        record = await self.hit_store.hit_for_assignment(assignment_id)
        if record is None:
            record = await self.hit_store.hit_by_id(assignment["HITId"])
        return assignment, record

    async def _settled(self, assignment_id: str) -> dict[str, Any]:
        """Write MTurk's current view of the assignment into its record and its agent."""
        assignment, record = await self._assignment(assignment_id)
        if record is not None:
            await self.sync.record_assignment(record, assignment)
            agent = await self.store.agent_for_assignment(record.run_id, assignment_id=assignment_id)
            target = {"Approved": AgentState.APPROVED, "Rejected": AgentState.REJECTED}.get(
                assignment["AssignmentStatus"]
            )
            if agent is not None and target is not None and agent.state != target:
                await self.sync.walk(record.run_id, agent, AgentState(agent.state), target)
        return assignment

    async def approve(self, assignment_id: str, feedback: str = "", *, override_rejection: bool = False) -> None:
        if len(feedback) > MAX_FEEDBACK:
            raise ReviewError(f"feedback is limited to {MAX_FEEDBACK} characters")
        assignment, _ = await self._assignment(assignment_id)
        if assignment["AssignmentStatus"] != "Approved":
            params: dict[str, Any] = {"AssignmentId": assignment_id, "OverrideRejection": override_rejection}
            if feedback:
                params["RequesterFeedback"] = feedback
            await self.mturk.call("ApproveAssignment", **params)
        await self._settled(assignment_id)

    async def reject(self, assignment_id: str, reason: str) -> None:
        reason = reason.strip()
        if not reason:
            raise ReviewError("a rejection needs a reason: the worker sees it, and it affects their approval rate")
        if len(reason) > MAX_FEEDBACK:
            raise ReviewError(f"the reason is limited to {MAX_FEEDBACK} characters")
        assignment, _ = await self._assignment(assignment_id)
        if assignment["AssignmentStatus"] == "Submitted":
            await self.mturk.call("RejectAssignment", AssignmentId=assignment_id, RequesterFeedback=reason)
        elif assignment["AssignmentStatus"] != "Rejected":
            status = assignment["AssignmentStatus"]
            raise ReviewError(f"assignment {assignment_id} is {status}; only submitted work can be rejected")
        await self._settled(assignment_id)

    async def bonus(self, assignment_id: str, amount: str | float, reason: str, *, key: str = "") -> BonusRecord:
        """Pay a bonus once: the same (assignment, key) never pays twice, across retries and restarts.

        `key` tells two intended bonuses on one assignment apart; by default it is the amount and reason.
        """
        amount_cents = rules.cents(amount)
        if amount_cents <= 0 or not reason.strip():
            raise ReviewError("a bonus needs a positive amount and a reason the worker will read")
        assignment, record = await self._assignment(assignment_id)
        if record is None:
            raise ReviewError(f"assignment {assignment_id} is not on a HIT Parley published")
        token = rules.bonus_token(assignment_id, key or f"{amount_cents}:{reason}")
        existing = await self.hit_store.bonus(token)
        bonus = await self.hit_store.reserve_bonus(BonusRecord(
            token=token, run_id=record.run_id, assignment_id=assignment_id, worker_id=assignment["WorkerId"],
            amount_cents=amount_cents, fee_cents=rules.fee_cents(amount_cents), reason=reason,
        ))
        if bonus.status == BonusStatus.PAID:
            return bonus
        if existing is not None and await self._already_paid(bonus):
            await self.hit_store.set_bonus_status(token, status=BonusStatus.PAID)
            return bonus.model_copy(update={"status": BonusStatus.PAID})
        try:
            await self.mturk.call(
                "SendBonus", WorkerId=bonus.worker_id, AssignmentId=assignment_id,
                BonusAmount=rules.dollars(amount_cents), Reason=reason, UniqueRequestToken=token,
            )
        except MTurkError as exc:
            if "Duplicate" not in exc.code:
                raise
        await self.hit_store.set_bonus_status(token, status=BonusStatus.PAID)
        return bonus.model_copy(update={"status": BonusStatus.PAID})

    async def bonus_paid(self, assignment_id: str, amount: str | float, reason: str, *, key: str = "") -> bool:
        """Whether this very bonus (same assignment, and key or amount and reason) is already paid."""
        token = rules.bonus_token(assignment_id, key or f"{rules.cents(amount)}:{reason}")
        existing = await self.hit_store.bonus(token)
        return existing is not None and existing.status == BonusStatus.PAID

    async def _already_paid(self, bonus: BonusRecord) -> bool:
        """A bonus interrupted after sending: MTurk lists it (tokens expire after 24h; the listing does not)."""
        async for paid in self.mturk.pages("ListBonusPayments", "BonusPayments", AssignmentId=bonus.assignment_id):
            if rules.cents(paid["BonusAmount"]) == bonus.amount_cents and paid.get("Reason") == bonus.reason:
                return True
        return False

    async def block(self, worker_id: str, reason: str) -> None:
        """A soft block: Parley refuses the worker and MTurk hides Parley's HITs from them."""
        if not reason.strip():
            raise ReviewError("a block needs a reason")
        await self.store.set_worker_block(worker_id, reason=reason)
        await self.quals.grant(await self.quals.type_id(SOFT_BLOCK), worker_id)

    async def unblock(self, worker_id: str) -> None:
        await self.store.set_worker_block(worker_id, reason=None)
        await self.quals.revoke(await self.quals.type_id(SOFT_BLOCK), worker_id)

    async def notify(self, worker_ids: list[str], subject: str, message: str) -> list[dict[str, Any]]:
        """Message workers (100 per MTurk call); returns MTurk's per-worker failures."""
        failures: list[dict[str, Any]] = []
        for start in range(0, len(worker_ids), 100):
            reply = await self.mturk.call(
                "NotifyWorkers", WorkerIds=worker_ids[start : start + 100], Subject=subject, MessageText=message
            )
            failures.extend(reply.get("NotifyWorkersFailureStatuses", []))
        return failures
