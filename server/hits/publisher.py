"""Publishing HITs and keeping their records true to MTurk: create, expire, refresh from ListHITs.

A HIT is recorded (`creating`, with its slot's UniqueRequestToken) before MTurk is asked to create it, so
a crash between the two leaves a record that the next refresh matches to the HIT MTurk made, or marks
`failed` when MTurk never made it. Every HIT carries RequesterAnnotation = run id, so ListHITs finds a
run's HITs even when no record names them.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from server.fence import Fence, LeaseLost, always
from server.hits import plan as rules
from server.hits.quals import (
    SOFT_BLOCK,
    Qualifications,
    allow_list_name,
    at_cap_name,
    block_list_name,
    onboarding_failed_name,
)
from server.providers.mturk import MTurk, MTurkError
from server.states import HitStatus
from server.store.hits import HIT_FREE, HitPlan, HitRecord, HitStore
from worlds.base import Task

log = logging.getLogger(__name__)
_HIT_ID = re.compile(r"\b[A-Z0-9]{30}\b")
_PAST = 0  # ExpireAt in the past expires a HIT now (MTurk's documented way)
FINAL = (HitStatus.SUBMITTED, HitStatus.REVIEWED, *HIT_FREE)


def epoch(value: Any) -> float:
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value or 0)


def status_of(hit: dict[str, Any]) -> HitStatus:
    """A HIT record's status from MTurk's view: open, taken, or closed (work or none: ask its assignments)."""
    if hit.get("HITStatus") == "Disposed":
        return HitStatus.CLOSED
    if hit.get("NumberOfAssignmentsAvailable", 0) > 0 and epoch(hit.get("Expiration")) > time.time():
        return HitStatus.OPEN
    if hit.get("NumberOfAssignmentsPending", 0) > 0:
        return HitStatus.TAKEN
    return HitStatus.CLOSED


class Publisher:
    """`fence(run_id)` is checked before every call that creates or changes a run's HITs: a server that no
    longer owns the run (server/ownership.py) raises LeaseLost instead of acting."""

    def __init__(
        self, mturk: MTurk, hit_store: HitStore, quals: Qualifications, public_url: str, fence: Fence = always
    ) -> None:
        self.mturk = mturk
        self.hit_store = hit_store
        self.quals = quals
        self.public_url = public_url
        self.fence = fence

    def _check_owner(self, run_id: str) -> None:
        if not self.fence(run_id):
            raise LeaseLost(run_id)

    async def gates(self, run_id: str, task: Task) -> rules.Gates:
        """The qualification types of the run's requirements; the run's allow and block lists granted first
        (granting again is harmless), so the HIT type never exists without them."""
        declared = task.qualifications
        return rules.Gates(
            soft_block=await self.quals.type_id(SOFT_BLOCK),
            onboarding_failed=await self.quals.type_id(onboarding_failed_name(task.name)) if task.onboarding else None,
            at_cap=await self.quals.type_id(at_cap_name(run_id)),
            block_list=await self._listed(block_list_name(run_id), declared.block_list),
            allow_list=await self._listed(allow_list_name(run_id), declared.allow_list),
        )

    async def _listed(self, name: str, workers: tuple[str, ...]) -> str | None:
        if not workers:
            return None
        type_id = await self.quals.type_id(name)
        for worker_id in workers:
            await self.quals.grant(type_id, worker_id)
        return type_id

    async def hit_type(self, plan: HitPlan, task: Task) -> str:
        """The run's HIT type (made once, remembered in its plan)."""
        if plan.hit_type_id:
            return plan.hit_type_id
        reqs = rules.requirements(
            await self.gates(plan.run_id, task), live=self.mturk.is_live, declared=task.qualifications
        )
        params = rules.hit_type_params(
            task, plan.reward_cents, duration_s=plan.assignment_duration_s,
            auto_approval_s=plan.auto_approval_delay_s, reqs=reqs,
        )
        reply = await self.mturk.call("CreateHITType", **params)
        plan.hit_type_id = str(reply["HITTypeId"])
        await self.hit_store.update_plan(plan.run_id, hit_type_id=plan.hit_type_id)
        return plan.hit_type_id

    async def publish(self, plan: HitPlan, task: Task, count: int) -> list[HitRecord]:
        """Publish up to `count` HITs, one slot each. Raises BudgetExceeded when the next would pass the cap,
        HitLimitReached when the run has published the HITs `--hits` allows."""
        hit_type = await self.hit_type(plan, task)
        made = []
        for _ in range(count):
            record = await self.hit_store.reserve_hit(
                plan.run_id, rules.charge_cents(plan.reward_cents), lambda slot: rules.hit_token(plan.run_id, slot)
            )
            made.append(await self.create(record, plan, hit_type))
        return made

    async def create(
        self, record: HitRecord, plan: HitPlan, hit_type: str, question: str | None = None
    ) -> HitRecord:
        """Ask MTurk for the record's HIT (by default the run's ExternalQuestion; a form HIT passes its
        HTMLQuestion). Safe to repeat: the token makes MTurk create it at most once."""
        self._check_owner(record.run_id)
        try:
            reply = await self.mturk.call(
                "CreateHITWithHITType", HITTypeId=hit_type, MaxAssignments=record.max_assignments,
                LifetimeInSeconds=plan.lifetime_s,
                Question=question or rules.external_question(self.public_url, plan.run_id),
                RequesterAnnotation=plan.run_id, UniqueRequestToken=record.token,
            )
        except MTurkError as exc:
            if "AlreadyExists" in exc.code or "Duplicate" in exc.code:
                found = _HIT_ID.search(exc.message)
                if found:  # MTurk names the HIT it made for this token earlier
                    await self.hit_store.set_hit(record.token, hit_id=found.group(0), status=HitStatus.OPEN)
                    return record.model_copy(update={"hit_id": found.group(0), "status": HitStatus.OPEN})
                return record  # stays `creating`: the next refresh finds it by its annotation
            if not exc.transient:
                await self.hit_store.set_hit(record.token, status=HitStatus.FAILED)
            raise
        hit = reply["HIT"]
        hit_id, expires_at = hit["HITId"], epoch(hit.get("Expiration"))
        await self.hit_store.set_hit(record.token, hit_id=hit_id, status=HitStatus.OPEN, expires_at=expires_at)
        return record.model_copy(update={"hit_id": hit_id, "status": HitStatus.OPEN, "expires_at": expires_at})

    async def expire(self, record: HitRecord) -> None:
        """Close a HIT to new workers now. A worker already on it may still finish and submit."""
        if record.hit_id is None:
            return
        self._check_owner(record.run_id)
        try:
            await self.mturk.call("UpdateExpirationForHIT", HITId=record.hit_id, ExpireAt=_PAST)
        except MTurkError as exc:
            if "HITDoesNotExist" not in exc.code and "InvalidHITState" not in exc.code:
                raise
        if record.status == HitStatus.OPEN:
            await self.hit_store.set_hit(record.token, status=HitStatus.CLOSED)

    async def keep_alive(self, plan: HitPlan, records: list[HitRecord], now: float) -> int:
        """The dead man's switch: HITs live `plan.lifetime_s` and only the run's living owner pushes their
        expiry out, once less than half of it is left. Returns how many HITs were extended."""
        extended = 0
        for record in records:
            due = record.status == HitStatus.OPEN and record.hit_id and record.expires_at - now < plan.lifetime_s / 2
            if not due:
                continue
            self._check_owner(record.run_id)
            until = now + plan.lifetime_s
            try:
                await self.mturk.call(
                    "UpdateExpirationForHIT", HITId=record.hit_id, ExpireAt=datetime.fromtimestamp(until, UTC)
                )
            except MTurkError as exc:
                if "HITDoesNotExist" not in exc.code and "InvalidHITState" not in exc.code:
                    raise
                continue  # gone or no longer open: the next refresh settles it
            await self.hit_store.set_hit(record.token, expires_at=until)
            extended += 1
        return extended

    async def listing(self, run_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
        """Every HIT on the account annotated with one of these run ids (one ListHITs sweep)."""
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        async for hit in self.mturk.pages("ListHITs", "HITs"):
            annotation = hit.get("RequesterAnnotation")
            if annotation in run_ids:
                found[annotation].append(hit)
        return found

    async def refresh(self, plan: HitPlan, hits: list[dict[str, Any]]) -> list[HitRecord]:
        """Bring the run's records in line with MTurk's listing; adopt HITs no record names."""
        records = await self.hit_store.hits(plan.run_id)
        by_id = {r.hit_id: r for r in records if r.hit_id}
        creating = [r for r in records if r.status == HitStatus.CREATING and not r.hit_id]
        for hit in sorted(hits, key=lambda h: epoch(h.get("CreationTime"))):
            record = by_id.get(hit["HITId"])
            status, expires = status_of(hit), epoch(hit.get("Expiration"))
            if record is None and creating:  # made just before a crash, before its id was written
                record = creating.pop(0)
                log.info("run %s: recovered HIT %s of slot %d", plan.run_id, hit["HITId"], record.slot)
                await self.hit_store.set_hit(record.token, hit_id=hit["HITId"], status=status, expires_at=expires)
            elif record is None:
                log.warning("run %s: adopting HIT %s that no record named", plan.run_id, hit["HITId"])
                assignments = int(hit.get("MaxAssignments") or 1)
                await self.hit_store.adopt_hit(
                    plan.run_id, hit_id=hit["HITId"], charge_cents=rules.charge_cents(plan.reward_cents, assignments),
                    status=status, expires_at=expires,
                    question=plan.question, max_assignments=assignments,
                )
            elif record.status not in FINAL and (record.status, record.expires_at) != (status, expires):
                await self.hit_store.set_hit(record.token, status=status, expires_at=expires)
        listed = {h["HITId"] for h in hits}
        for record in records:
            if record.status == HitStatus.CREATING and record in creating:
                await self.hit_store.set_hit(record.token, status=HitStatus.FAILED)  # MTurk never made it
            elif record.hit_id and record.hit_id not in listed and record.status in (HitStatus.OPEN, HitStatus.TAKEN):
                await self.hit_store.set_hit(record.token, status=HitStatus.CLOSED)  # disposed: ask its assignments
        return await self.hit_store.hits(plan.run_id)
