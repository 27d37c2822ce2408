"""MTurk's requester API through boto3 (live, MTurk's sandbox, or any endpoint: the built-in sandbox), and
MTurk behind the provider seam (`MTurkProvider`, at the end).

boto3 is synchronous. Every call goes through one helper, `MTurk.call`, which runs it off the event loop
with `asyncio.to_thread`, bounds the wait, translates botocore's exceptions into one `MTurkError`, and
retries throttling and transient failures by the providers' one policy (server/providers/retry.py).
Nothing else in Parley imports boto3.

Credentials come from the standard AWS chain (environment, shared files, instance role). Only for the
built-in sandbox, which accepts any signature, does Parley supply dummy static credentials, so a developer
machine with real keys never sends them to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

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
from server.providers.retry import ProviderError, Retry, retried
from server.states import BonusStatus, HitStatus

if TYPE_CHECKING:
    from server.hits.manager import HitManager

log = logging.getLogger(__name__)
WORKED_ON = (HitStatus.TAKEN, HitStatus.SUBMITTED, HitStatus.REVIEWED)  # a worker took the HIT

LIVE_ENDPOINT = "https://mturk-requester.us-east-1.amazonaws.com"
SANDBOX_ENDPOINT = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
REGION = "us-east-1"

# Error codes worth another try: MTurk's throttling, AWS's generic ones, and server-side faults.
TRANSIENT_CODES = frozenset({
    "ServiceFault", "ServiceUnavailable", "InternalError", "InternalFailure", "Throttling", "ThrottlingException",
    "TooManyRequestsException", "RequestLimitExceeded", "AWS.MechanicalTurk.RequestThrottled",
    "AWS.MechanicalTurk.ServiceUnavailable",
})


class MTurkError(ProviderError):
    """A refused or failed MTurk call. `code` is MTurk's TurkErrorCode when it sent one."""

    def __init__(self, operation: str, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message
        self.transient = transient


def endpoint_for(provider: str, *, public_url: str, endpoint_url: str = "") -> str:
    """Where the requester API is: an explicit endpoint wins, else the provider's."""
    if endpoint_url:
        return endpoint_url
    if provider == "live":
        return LIVE_ENDPOINT
    if provider == "sandbox":
        return SANDBOX_ENDPOINT
    return public_url.rstrip("/") + "/sandbox/mturk"


def account_key(endpoint: str) -> str:
    """A short name for the MTurk account behind an endpoint: records are never mixed across accounts."""
    if endpoint == LIVE_ENDPOINT:
        return "live"
    if endpoint == SANDBOX_ENDPOINT:
        return "sandbox"
    if endpoint.rstrip("/").endswith("/sandbox/mturk"):
        return "builtin"
    return endpoint


class MTurk:
    """One requester account. `await mturk.call("GetHIT", HITId=...)` returns MTurk's response dict."""

    def __init__(self, client: Any, *, endpoint: str, retry: Retry | None = None) -> None:
        self._client = client
        self.endpoint = endpoint
        self.account = account_key(endpoint)
        self.retry = retry or Retry()

    @classmethod
    def connect(cls, endpoint: str, *, builtin: bool = False, retry: Retry | None = None) -> MTurk:
        return cls(_client(endpoint, builtin=builtin), endpoint=endpoint, retry=retry)

    def retarget(self, endpoint: str) -> None:
        """Talk to the built-in sandbox at another address (another process on the data directory serves
        it now). Only between built-in endpoints: records are never mixed across accounts."""
        if endpoint == self.endpoint:
            return
        if account_key(endpoint) != self.account:
            raise ValueError(f"cannot move MTurk calls from account {self.account} to {account_key(endpoint)}")
        log.info("MTurk calls go to the built-in sandbox at %s now", endpoint)
        self._client, self.endpoint = _client(endpoint, builtin=True), endpoint

    @property
    def is_live(self) -> bool:
        return self.account == "live"

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """The one way Parley calls MTurk: off the loop, bounded, retried with backoff when transient."""
        method: Callable[..., dict[str, Any]] = getattr(self._client, xform_name(operation))

        async def attempt() -> dict[str, Any]:
            try:
                async with asyncio.timeout(self.retry.call_timeout_s):  # never drops a shutdown's cancel
                    return await asyncio.to_thread(method, **params)
            except (ClientError, BotoCoreError, TimeoutError) as exc:
                raise _translate(operation, exc) from None

        return await retried(f"MTurk {operation}", attempt, self.retry)

    async def pages(self, operation: str, key: str, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paginated list operation (ListHITs, ListAssignmentsForHIT, ...)."""
        token: str | None = None
        while True:
            extra = {"NextToken": token} if token else {}
            page = await self.call(operation, MaxResults=100, **params, **extra)
            for item in page.get(key, []):
                yield item
            token = page.get("NextToken")
            if not token or not page.get(key):
                return


def _client(endpoint: str, *, builtin: bool) -> Any:
    # Parley retries itself (below), so botocore's own retries are off: one policy, one place.
    config = Config(
        retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=20, max_pool_connections=20,
    )
    dummy = {"aws_access_key_id": "parley-builtin", "aws_secret_access_key": "parley-builtin"} if builtin else {}
    return boto3.session.Session().client("mturk", region_name=REGION, endpoint_url=endpoint, config=config, **dummy)


def _translate(operation: str, exc: Exception) -> MTurkError:
    if isinstance(exc, ClientError):
        response: dict[str, Any] = exc.response
        error = response.get("Error", {})
        code = str(response.get("TurkErrorCode") or error.get("Code") or "Unknown")
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        transient = code in TRANSIENT_CODES or str(error.get("Code")) in TRANSIENT_CODES or status >= 500
        return MTurkError(operation, code, str(error.get("Message") or exc), transient=transient)
    if isinstance(exc, TimeoutError):
        return MTurkError(operation, "Timeout", "no answer in time", transient=True)
    transient = isinstance(exc, ConnectionError | HTTPClientError)
    return MTurkError(operation, type(exc).__name__, str(exc), transient=transient)


# ---- MTurk behind the provider seam ------------------------------------------------------------------


class MTurkProvider:
    """MTurk as a `Provider` (server/providers/base.py), over the HIT manager's parts: a run is published as
    HITs (one per slot; the recruitment is the run's HIT set), a submission is an assignment, a bonus goes
    through `SendBonus` with a `UniqueRequestToken`, the block list is the soft-block qualification.

    The HIT manager keeps doing its own passes; this adapter is what review, the CLI and anything written
    for every provider call. (It imports `server.hits` only inside its methods: `server.hits` is built on
    the client above.)
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
        from server.hits.plan import fee_cents

        return Cost(paid_cents=reward_cents, fee_cents=fee_cents(reward_cents))

    def bonus_cost(self, amount_cents: int) -> Cost:
        return self.place_cost(amount_cents)

    async def spent_cents(self, run_id: str) -> int:
        return await self.manager.hit_store.spend(run_id)

    # ---- recruiting ---------------------------------------------------------------------------

    async def publish(self, spec: RecruitmentSpec, places: int, *, budget_cents: int = 0) -> Recruitment:
        """Publish HITs until the run has `places` that may still bring work (open, taken or worked)."""
        from server.store.hits import HIT_FREE, HitPlan
        from server.store.hits import BudgetExceeded as OverBudget

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
        from server.store.hits import HIT_FREE

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
        from server.hits.plan import dollars
        from server.store.hits import BudgetExceeded as OverBudget

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
