"""The dashboard's requester actions that match the CLI beyond reviewing one agent: lift a block, message
workers, compensate a worker (`parley compensate`), approve or reject a form run's answer.

Each goes through the HIT manager (MTurk first, then Parley's records) and is recorded in `review_action`;
without a HIT manager (a server with no MTurk) those that need MTurk are refused with a reason.
"""

from __future__ import annotations

from typing import Any

from server.admin.actions import ReviewRefused
from server.agents import new_id
from server.hits.manager import HitManager
from server.hits.review import ReviewError
from server.providers.mturk import MTurkError
from server.states import AssignmentStatus
from server.store import Store
from server.store.hits import BudgetExceeded, HitStore
from server.store.review import ReviewAction, ReviewStore

MAX_NOTIFY = 100  # one NotifyWorkers call: the dashboard sends no more at once


class RequesterRefused(ReviewRefused):
    """Answered as the review actions' refusals are: `{"error": {"code", "message"}}` with its status."""


class RequesterDesk:
    def __init__(self, *, store: Store, manager: HitManager | None) -> None:
        self.store = store
        self.manager = manager
        self.records = ReviewStore(store)
        self.hit_store = HitStore(store)

    def _mturk(self) -> HitManager:
        if self.manager is None:
            raise RequesterRefused(409, "no_mturk", "This server runs no HIT manager (no MTurk provider), so this "
                                                    "action cannot reach MTurk.")
        return self.manager

    async def unblock(self, worker_id: str, *, actor: str = "admin") -> dict[str, Any]:
        """Lift a soft block: Parley admits the worker again and MTurk shows them Parley's HITs."""
        if self.manager is not None:
            await _calling(self.manager.review.unblock(worker_id))
        else:
            await self.store.set_worker_block(worker_id, reason=None)
        await self._record(worker_id, "unblock", "", actor=actor)
        return {"action": "unblock", "worker_id": worker_id}

    async def notify(
        self, worker_ids: list[str], subject: str, message: str, *, actor: str = "admin"
    ) -> dict[str, Any]:
        workers = list(dict.fromkeys(w.strip() for w in worker_ids if w.strip()))
        if not workers or len(workers) > MAX_NOTIFY:
            raise RequesterRefused(422, "invalid_workers", f"Name 1 to {MAX_NOTIFY} worker ids to notify.")
        if not subject.strip() or not message.strip():
            raise RequesterRefused(422, "message_required", "A notification needs a subject and a message.")
        failures = await _calling(self._mturk().review.notify(workers, subject, message))
        failed = {f["WorkerId"]: f.get("NotifyWorkersFailureMessage", "") for f in failures}
        for worker_id in workers:
            if worker_id not in failed:
                await self._record(worker_id, "notify", subject, actor=actor)
        return {"action": "notify", "notified": [w for w in workers if w not in failed], "failed": failed}

    async def compensate(
        self, worker_id: str, *, amount: str, reason: str, run_id: str = "", key: str = "", actor: str = "admin"
    ) -> dict[str, Any]:
        paid = await _calling(self._mturk().compensations.pay(worker_id, amount, reason, run_id=run_id, key=key))
        record = paid.record
        if not paid.already:
            await self._record(worker_id, "compensate", reason, actor=actor, run_id=record.run_id,
                               amount_cents=record.amount_cents)
        return {"action": "compensate", "worker_id": worker_id, "run_id": record.run_id, "hit_id": record.hit_id,
                "status": record.status, "duplicate": paid.already, "message": paid.describe()}

    async def review_form_answer(
        self, assignment_id: str, *, approve: bool, text: str, actor: str = "admin"
    ) -> dict[str, Any]:
        """Approve (with feedback) or reject (reason required) one answer of a form run."""
        answer = await self.hit_store.form_answer(assignment_id)
        if answer is None:
            raise RequesterRefused(404, "unknown_answer", f"No form run has an answer {assignment_id!r}.")
        wanted = AssignmentStatus.APPROVED if approve else AssignmentStatus.REJECTED
        if answer.assignment_status == wanted:
            return {"action": "approve" if approve else "reject", "assignment_id": assignment_id,
                    "status": wanted, "duplicate": True}
        if not approve and not text.strip():
            raise RequesterRefused(422, "reason_required", "A rejection needs a reason: the worker sees it, and it "
                                                           "lowers their approval rate.")
        review = self._mturk().review
        rejected = answer.assignment_status == AssignmentStatus.REJECTED
        await _calling(review.approve(assignment_id, text, override_rejection=rejected)
                       if approve else review.reject(assignment_id, text))
        await self._record(answer.worker_id, "approve" if approve else "reject", text, actor=actor,
                           run_id=answer.run_id, assignment_id=assignment_id)
        fresh = await self.hit_store.form_answer(assignment_id)
        return {"action": "approve" if approve else "reject", "assignment_id": assignment_id,
                "status": fresh.assignment_status if fresh else wanted, "duplicate": False}

    async def _record(
        self, worker_id: str, action: str, reason: str, *, actor: str, run_id: str = "", amount_cents: int = 0,
        assignment_id: str = "",
    ) -> None:
        await self.records.record(ReviewAction(
            id=new_id(), run_id=run_id, worker_id=worker_id, assignment_id=assignment_id, action=action,
            reason=reason[:1024], amount_cents=amount_cents, actor=actor,
        ))


async def _calling(call: Any) -> Any:
    try:
        return await call
    except ReviewError as exc:
        raise RequesterRefused(422, "refused", str(exc)) from exc
    except BudgetExceeded as exc:
        raise RequesterRefused(409, "budget_exceeded", str(exc)) from exc
    except MTurkError as exc:
        raise RequesterRefused(502, "mturk_error", f"MTurk refused: {exc.code}: {exc.message}") from exc
