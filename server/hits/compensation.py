"""Compensation: pay a worker who has no assignment to bonus (they hit a bug, their HIT was never made).

`parley compensate WORKER --amount A --reason R` publishes a one-assignment HIT that only that worker can
see (a qualification granted to them, required with `Exists`), whose page says why and has one Submit
button; it is approved as soon as it is submitted (`AutoApprovalDelayInSeconds=0`, and the HIT manager or a
second `parley compensate` approves a submitted one at once). The run named (or the worker's latest) pays:
its budget cap counts the reward and MTurk's fee from the moment the HIT is reserved. A retry (same run,
worker, amount, reason and key) publishes nothing more: the record's token is the HIT's UniqueRequestToken.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from html import escape

from server.hits import plan as rules
from server.hits.publisher import status_of
from server.hits.quals import Qualifications
from server.hits.review import ReviewError
from server.providers.mturk import MTurk, MTurkError
from server.run_flags import FlagError, reward
from server.states import AssignmentStatus, CompensationStatus, HitStatus
from server.store import Store
from server.store.compensations import CompensationRecord, CompensationStore
from server.store.hits import HitStore

log = logging.getLogger(__name__)
ANNOTATION = "parley-compensation"  # RequesterAnnotation: never a run id, so no run's sweep adopts these HITs
LIFETIME_S = 7 * 24 * 3600
DURATION_S = 3600
_HIT_ID = re.compile(r"\b[A-Z0-9]{30}\b")
_WORKER = re.compile(r"[A-Za-z0-9_-]{1,64}")
HTML_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Compensation</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 1em auto; padding: 0 1em">
<h1>Compensation for {worker}</h1>
<p id="reason">{reason}</p>
<p>Submit this HIT to receive ${amount}. It is approved as soon as you submit it; there is nothing else to do.</p>
<form name="mturk_form" id="mturk_form" method="post" action="https://www.mturk.com/mturk/externalSubmit">
<input type="hidden" name="assignmentId" id="assignmentId" value="">
<input type="hidden" name="compensation" value="{token}">
<button type="submit" id="submitButton">Submit</button>
</form>
<script>
(function () {{
  var params = new URLSearchParams(window.location.search);
  var assignmentId = params.get("assignmentId") || "ASSIGNMENT_ID_NOT_AVAILABLE";
  var submitTo = params.get("turkSubmitTo");
  var form = document.getElementById("mturk_form");
  document.getElementById("assignmentId").value = assignmentId;
  if (submitTo) form.action = submitTo.replace(/\\/$/, "") + "/mturk/externalSubmit";
  if (assignmentId === "ASSIGNMENT_ID_NOT_AVAILABLE") document.getElementById("submitButton").disabled = true;
}})();
</script>
</body></html>
"""


def compensation_token(run_id: str, worker_id: str, amount_cents: int, reason: str, key: str) -> str:
    digest = hashlib.sha256(f"compensation:{run_id}:{worker_id}:{amount_cents}:{reason}:{key}".encode()).hexdigest()
    return "parley-" + digest[:48]


def compensation_name(worker_id: str) -> str:
    return f"Parley compensation: {worker_id}"


def question(record: CompensationRecord) -> str:
    page = PAGE.format(worker=escape(record.worker_id), reason=escape(record.reason),
                       amount=rules.dollars(record.amount_cents), token=escape(record.token))
    return (f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}"><HTMLContent><![CDATA[{page}]]></HTMLContent>'
            "<FrameHeight>400</FrameHeight></HTMLQuestion>")


@dataclass(frozen=True)
class Paid:
    """What `pay` did: the record as it stands, and whether an earlier call had already published it."""

    record: CompensationRecord
    already: bool

    def describe(self) -> str:
        r = self.record
        amount = f"${rules.dollars(r.amount_cents)} (+ ${rules.dollars(r.fee_cents)} fee)"
        if r.status == CompensationStatus.PAID:
            return f"Compensation {amount} to {r.worker_id}: already paid (HIT {r.hit_id})."
        if self.already:
            return (f"Compensation {amount} to {r.worker_id}: already published as HIT {r.hit_id}, not yet "
                    "submitted by the worker; nothing more was published.")
        return (f"Compensation {amount} to {r.worker_id}: published HIT {r.hit_id}, seen only by {r.worker_id} "
                f"and paid when they submit it (run {r.run_id}'s budget).")


class Compensations:
    def __init__(self, mturk: MTurk, hit_store: HitStore, store: Store, quals: Qualifications) -> None:
        self.mturk = mturk
        self.hit_store = hit_store
        self.records = CompensationStore(hit_store)
        self.store = store
        self.quals = quals

    async def run_of(self, worker_id: str) -> str:
        """The latest run of this database the worker took part in (whose budget pays by default)."""
        for row in reversed(await self.store.runs()):
            if await self.store.agents(row.id, worker_id=worker_id):
                return row.id
            if any(a.worker_id == worker_id for a in await self.hit_store.form_answers(row.id)):
                return row.id
        raise ReviewError(f"worker {worker_id} took part in no run of this database: name the run whose budget "
                          "pays with --run")

    async def pay(self, worker_id: str, amount: str, reason: str, *, run_id: str = "", key: str = "") -> Paid:
        """Publish (once) the worker's compensation HIT; refused (ReviewError) with what to change."""
        amount_cents, reason = _checked(worker_id, amount, reason)
        run_id = run_id or await self.run_of(worker_id)
        plan = await self.hit_store.plan(run_id)
        if plan is None:
            raise ReviewError(f"run {run_id} was never published on MTurk, so it has no budget to pay from: "
                              "name a published run with --run")
        if plan.account != self.mturk.account:
            raise ReviewError(f"run {run_id} publishes on {plan.account}, not {self.mturk.account}: use its provider")
        token = compensation_token(run_id, worker_id, amount_cents, reason, key)
        existing = await self.records.get(token)
        if existing is not None and existing.status in (CompensationStatus.OPEN, CompensationStatus.PAID):
            settled = await self.settle(existing)
            return Paid(settled, already=True)
        record = await self.records.reserve(CompensationRecord(
            token=token, run_id=run_id, worker_id=worker_id, amount_cents=amount_cents,
            fee_cents=rules.fee_cents(amount_cents), reason=reason,
        ))
        return Paid(await self._create(record), already=False)

    async def _create(self, record: CompensationRecord) -> CompensationRecord:
        type_id = await self.quals.type_id(compensation_name(record.worker_id),
                                           "Set by Parley: lets one worker see the HITs that compensate them.")
        await self.quals.grant(type_id, record.worker_id)
        try:
            reply = await self.mturk.call(
                "CreateHIT", Title="Compensation from the requester"[:128], Description=record.reason[:2000],
                Keywords="compensation", Reward=rules.dollars(record.amount_cents), MaxAssignments=1,
                LifetimeInSeconds=LIFETIME_S, AssignmentDurationInSeconds=DURATION_S, AutoApprovalDelayInSeconds=0,
                Question=question(record), RequesterAnnotation=f"{ANNOTATION}:{record.run_id}"[:255],
                UniqueRequestToken=record.token,
                QualificationRequirements=[{"QualificationTypeId": type_id, "Comparator": "Exists",
                                            "ActionsGuarded": rules.HIDE}],
            )
            hit_id = str(reply["HIT"]["HITId"])
        except MTurkError as exc:
            found = _HIT_ID.search(exc.message) if ("AlreadyExists" in exc.code or "Duplicate" in exc.code) else None
            if found is None:
                if not exc.transient:
                    await self.records.update(record.token, status=CompensationStatus.FAILED)
                raise
            hit_id = found.group(0)  # made by an earlier try that crashed before writing it down
        await self.records.update(record.token, hit_id=hit_id, status=CompensationStatus.OPEN)
        return record.model_copy(update={"hit_id": hit_id, "status": CompensationStatus.OPEN})

    async def settle(self, record: CompensationRecord) -> CompensationRecord:
        """Bring an open compensation up to date: a submitted assignment is approved now (paid on submit), an
        approved one makes it `paid`, a HIT closed unworked makes it `expired` (its charge released)."""
        if record.status != CompensationStatus.OPEN or not record.hit_id:
            return record
        reply = await self.mturk.call("ListAssignmentsForHIT", HITId=record.hit_id,
                                      AssignmentStatuses=[AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED])
        for assignment in reply.get("Assignments", []):
            if assignment["AssignmentStatus"] == AssignmentStatus.SUBMITTED:
                await _approve(self.mturk, assignment["AssignmentId"], record.reason)
            await self.records.update(record.token, status=CompensationStatus.PAID,
                                      assignment_id=assignment["AssignmentId"])
            return record.model_copy(update={"status": CompensationStatus.PAID,
                                             "assignment_id": assignment["AssignmentId"]})
        hit = (await self.mturk.call("GetHIT", HITId=record.hit_id))["HIT"]
        if status_of(hit) == HitStatus.CLOSED and not hit.get("NumberOfAssignmentsCompleted"):
            await self.records.update(record.token, status=CompensationStatus.EXPIRED)
            return record.model_copy(update={"status": CompensationStatus.EXPIRED})
        return record

    async def settle_open(self, run_ids: set[str]) -> None:
        """The HIT manager's pass: every open compensation of these runs."""
        for record in await self.records.listed(statuses=[CompensationStatus.OPEN]):
            if record.run_id in run_ids:
                try:
                    await self.settle(record)
                except MTurkError as exc:
                    log.warning("compensation %s to %s: not settled this pass: %s", record.hit_id, record.worker_id,
                                exc)


async def _approve(mturk: MTurk, assignment_id: str, reason: str) -> None:
    try:
        await mturk.call("ApproveAssignment", AssignmentId=assignment_id,
                         RequesterFeedback=f"Compensation: {reason}"[:1024])
    except MTurkError as exc:
        if "InvalidAssignmentState" not in exc.code:  # approved meanwhile (auto-approval): paid all the same
            raise


def _checked(worker_id: str, amount: str, reason: str) -> tuple[int, str]:
    if not _WORKER.fullmatch(worker_id):
        raise ReviewError(f"{worker_id!r} is not a worker id (letters and digits, as MTurk shows it)")
    reason = reason.strip()
    if not reason:
        raise ReviewError("a compensation needs a --reason: the worker reads it on the HIT")
    if len(reason) > 1024:
        raise ReviewError("--reason is limited to 1024 characters")
    try:
        value = reward(amount)
    except FlagError as exc:
        raise ReviewError(str(exc).replace("--reward", "--amount")) from None
    return rules.cents(value), reason
