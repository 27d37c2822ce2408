"""Parley's Prolific provider: a run is published as a study (places, not one HIT per slot), its people
hand in with the study's completion code, review approves or rejects by transition, bonuses go through
bulk bonus payments, and a participant group is the block list.

Money: Prolific reserves a study's rewards, its service fee and the VAT on that fee when places are
offered, so the budget counts every place offered (or, once a study is stopped, every place taken and not
rejected, returned or timed out) at that full price, plus every bonus with its fee and VAT. The rates are
settings (`prolific_fee_percent`, `prolific_vat_percent`; docs/prolific.md says where they come from) and
fees are rounded up, so Parley's count is never below Prolific's.

Acting once: creating a study, creating a bonus and paying it are not idempotent on Prolific; each is
recorded in the database (server/store/prolific.py) before it is asked for, so a retry after a crash, or in
another instance, adopts what was made (a study is found again by its internal name `parley:<run id>`) and
never pays a bonus twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from server.providers.base import (
    PROLIFIC_WORDS,
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
from server.providers.prolific_api import ProlificApi, ProlificError
from server.states import ProlificBonusState
from server.store.prolific import BonusEntry, ProlificRecords, StudyEntry, StudyPlan

PARAMS = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
TAG = "parley:"
BLOCK_GROUP = "parley-blocked"
MIN_REJECTION_MESSAGE = 100
OPEN = ("ACTIVE", "PAUSED", "AWAITING REVIEW", "UNPUBLISHED", "SCHEDULED", "PUBLISHING")
STATUSES = {
    "ACTIVE": SubmissionStatus.ACTIVE, "RESERVED": SubmissionStatus.ACTIVE,
    "AWAITING REVIEW": SubmissionStatus.AWAITING_REVIEW, "APPROVED": SubmissionStatus.APPROVED,
    "PARTIALLY APPROVED": SubmissionStatus.APPROVED, "REJECTED": SubmissionStatus.REJECTED,
    "RETURNED": SubmissionStatus.RETURNED, "SCREENED OUT": SubmissionStatus.RETURNED,
    "TIMED-OUT": SubmissionStatus.TIMED_OUT,
}
UNPAID = (SubmissionStatus.REJECTED, SubmissionStatus.RETURNED, SubmissionStatus.TIMED_OUT)


class ProlificRefusal(ValueError):
    """An action Parley refuses before asking Prolific (e.g. a rejection message Prolific would refuse)."""


class NotRecruiting(ProlificRefusal):
    """The run's plan says to stop recruiting (decided since the caller looked)."""


class BonusUncertain(RuntimeError):
    """A bonus whose payment was asked for but never confirmed (the answer was lost): paying again could pay
    twice, so Parley does not; check the study's bonuses on Prolific."""


@dataclass(frozen=True)
class Codes:
    done: str  # the work is complete
    paid_incomplete: str  # to be paid without completing (a partner left, the wait ran out)


def codes_for(run_id: str) -> Codes:
    digest = hashlib.sha256(f"prolific-codes:{run_id}".encode()).hexdigest().upper()
    return Codes(done="C" + digest[:9], paid_incomplete="P" + digest[9:18])


def study_url(task_url: str) -> str:
    return task_url + ("&" if "?" in task_url else "?") + PARAMS


def submission_of(raw: dict[str, Any], study_id: str = "") -> Submission:
    status = str(raw.get("status", ""))
    return Submission(
        id=str(raw["id"]), recruitment_id=str(raw.get("study_id") or study_id),
        worker_id=str(raw.get("participant_id", "")), status=STATUSES.get(status, SubmissionStatus.AWAITING_REVIEW),
        provider_status=status, code=str(raw.get("study_code") or ""),
    )


class ProlificProvider:
    words: Words = PROLIFIC_WORDS
    supports = frozenset(Feature) - {Feature.PREVIEW, Feature.CAPS_HIDDEN, Feature.FORM_RUNS, Feature.NOTIFY}

    def __init__(
        self, api: ProlificApi, records: ProlificRecords, *, fee_percent: float, vat_percent: float, is_live: bool
    ) -> None:
        self.api = api
        self.records = records
        self.account = records.account
        self.is_live = is_live
        self.fee = Decimal(str(fee_percent)) / 100
        self.vat = Decimal(str(vat_percent)) / 100
        # Only a run's owner publishes it (server/ownership.py); this orders its own publish and expire calls.
        self._studies_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self.api.aclose()

    async def plan(self, run_id: str) -> StudyPlan | None:
        """The run's Prolific plan, when the run recruits on Prolific."""
        return await self.records.plan(run_id)

    # ---- money ------------------------------------------------------------------------------------

    def _cost(self, paid: int) -> Cost:
        fee = math.ceil(paid * self.fee)
        return Cost(paid_cents=paid, fee_cents=fee, vat_cents=math.ceil(fee * self.vat))

    def place_cost(self, reward_cents: int) -> Cost:
        return self._cost(reward_cents)

    def bonus_cost(self, amount_cents: int) -> Cost:
        return self._cost(amount_cents)

    async def spent_cents(self, run_id: str) -> int:
        return await self._studies_cents(run_id) + await self.records.bonuses_cents(run_id)

    async def _studies_cents(self, run_id: str) -> int:
        """What the run's studies may cost: every place of an open study, every place taken and not given up
        of a closed one, each with Prolific's fee and VAT."""
        total = 0
        for entry in await self.records.studies(run_id):
            if not entry.study_id:
                continue
            study = await self.api.call("GET", f"/studies/{entry.study_id}/")
            if study["status"] in OPEN:
                places = int(study["total_available_places"])
            else:
                places = sum(1 for s in await self._submissions(entry.study_id) if s.status not in UNPAID)
            total += self._cost(int(study["reward"]) * places).total_cents
        return total

    def _check_budget(self, what: str, spent: int, more: int, budget_cents: int) -> None:
        if budget_cents and spent + more > budget_cents:
            raise _over_budget(what, spent + more, budget_cents)

    # ---- recruiting -------------------------------------------------------------------------------

    async def publish(self, spec: RecruitmentSpec, places: int, *, budget_cents: int = 0) -> Recruitment:
        async with self._studies_lock:
            plan = await self.records.plan(spec.run_id)
            if plan is not None and not plan.publishing:  # read afresh: `expire` may come from another process
                raise NotRecruiting(f"run {spec.run_id} was told to stop recruiting; plan it again to resume")
            entry = await self._open_study(spec.run_id)
            spent = await self.spent_cents(spec.run_id)
            if entry is None:
                self._check_budget(f"a study of {places} places", spent,
                                   self._cost(spec.reward_cents * places).total_cents, budget_cents)
                entry = await self._create(spec, places)
            else:
                study = await self.api.call("GET", f"/studies/{entry.study_id}/")
                more = places - int(study["total_available_places"])
                if more > 0:
                    self._check_budget(f"{more} more places", spent,
                                       self._cost(int(study["reward"]) * more).total_cents, budget_cents)
                    await self.api.call("PATCH", f"/studies/{entry.study_id}/",
                                        json={"total_available_places": places}, idempotent=True)
            study = await self.api.call("GET", f"/studies/{entry.study_id}/")
            if study["status"] == "UNPUBLISHED":
                study = await self.api.call("POST", f"/studies/{entry.study_id}/transition/",
                                            json={"action": "PUBLISH"})
            return self._recruitment(study)

    async def _open_study(self, run_id: str) -> StudyEntry | None:
        """The run's study still taking people, adopting one made just before a crash (by its name)."""
        entries = await self.records.studies(run_id)
        known = {e.study_id for e in entries}
        for entry in entries:
            if not entry.study_id:
                found = [s for s in await self._tagged() if s["internal_name"] == TAG + run_id and s["id"] not in known]
                if not found:
                    await self.records.drop_study(entry)
                    continue
                await self.records.set_study_id(entry, str(found[-1]["id"]))
            study = await self.api.call("GET", f"/studies/{entry.study_id}/")
            if study["status"] in OPEN:
                return entry
        return None

    async def _create(self, spec: RecruitmentSpec, places: int) -> StudyEntry:
        # intent first: a crash before the answer is resolved by the study's name
        entry = await self.records.reserve_study(spec.run_id, spec.reward_cents)
        codes = codes_for(spec.run_id)
        review = [{"action": "MANUALLY_REVIEW"}]
        body = {
            "name": spec.title, "internal_name": TAG + spec.run_id, "description": spec.description,
            "external_study_url": study_url(spec.task_url), "prolific_id_option": "url_parameters",
            "completion_codes": [
                {"code": codes.done, "code_type": "COMPLETED", "actions": review},
                {"code": codes.paid_incomplete, "code_type": "OTHER", "actions": review},
            ],
            "total_available_places": places, "estimated_completion_time": spec.estimated_minutes,
            "maximum_allowed_time": spec.max_minutes, "reward": spec.reward_cents,
            "device_compatibility": list(spec.devices),
            "filters": [{"filter_id": "participant_group_blocklist", "selected_values": [
                await self._block_group(), *[await self._group(name) for name in spec.excluded]
            ]}],
        }
        study = await self.api.call("POST", "/studies/", json=body, idempotent=False)
        await self.records.set_study_id(entry, str(study["id"]))
        return entry

    async def expire(self, run_id: str) -> None:
        """Stop the run's open studies: no one new starts; those working may still hand in. A study still being
        made (recorded without its id) is looked for by its name, so it is stopped too; it is not adopted
        here, nor its record dropped (the publisher making it may be another process)."""
        async with self._studies_lock:
            entries = await self.records.studies(run_id)
            ids = [e.study_id for e in entries if e.study_id]
            if len(ids) < len(entries):
                ids += [str(s["id"]) for s in await self._tagged()
                        if s["internal_name"] == TAG + run_id and str(s["id"]) not in ids]
            for study_id in ids:
                study = await self.api.call("GET", f"/studies/{study_id}/")
                if study["status"] in OPEN:
                    await self.api.call("POST", f"/studies/{study_id}/transition/", json={"action": "STOP"},
                                        idempotent=True)

    async def _tagged(self) -> list[dict[str, Any]]:
        return [s for s in await self.api.pages("/studies/") if str(s.get("internal_name", "")).startswith(TAG)]

    async def recruitments(self) -> list[Recruitment]:
        return [self._recruitment(s) for s in await self._tagged()]

    def _recruitment(self, study: dict[str, Any]) -> Recruitment:
        return Recruitment(
            id=str(study["id"]), run_id=str(study.get("internal_name", "")).removeprefix(TAG),
            status=str(study["status"]), places=int(study["total_available_places"]),
            taken=int(study.get("places_taken", 0)), open=study["status"] == "ACTIVE",
        )

    async def _submissions(self, study_id: str) -> list[Submission]:
        return [submission_of(s, study_id) for s in await self.api.pages(f"/studies/{study_id}/submissions/")]

    async def submissions(self, run_id: str) -> list[Submission]:
        found: list[Submission] = []
        for entry in await self.records.studies(run_id):
            if entry.study_id:
                found.extend(await self._submissions(entry.study_id))
        return found

    # ---- review -----------------------------------------------------------------------------------

    async def _submission(self, submission_id: str) -> Submission:
        return submission_of(await self.api.call("GET", f"/submissions/{submission_id}/"))

    async def approve(self, submission_id: str, feedback: str = "") -> Submission:
        """Approve work awaiting review (Prolific keeps no approval message; `feedback` is not sent)."""
        current = await self._submission(submission_id)
        if current.status == SubmissionStatus.APPROVED:
            return current
        raw = await self.api.call("POST", f"/submissions/{submission_id}/transition/", json={"action": "APPROVE"},
                                  idempotent=True)
        return submission_of(raw)

    async def reject(self, submission_id: str, reason: str, category: RejectionCategory) -> Submission:
        reason = reason.strip()
        if len(reason) < MIN_REJECTION_MESSAGE:
            raise ProlificRefusal(
                f"Prolific needs a rejection message of at least {MIN_REJECTION_MESSAGE} characters, telling the "
                f"participant why (this one has {len(reason)})"
            )
        raw = await self.api.call(
            "POST", f"/submissions/{submission_id}/transition/", idempotent=True,
            json={"action": "REJECT", "message": reason, "rejection_category": category.value},
        )
        return submission_of(raw)

    async def bonus(
        self, submission_id: str, amount_cents: int, reason: str, *, key: str, budget_cents: int = 0
    ) -> Bonus:
        """Pay a bonus once per `key`, across retries and restarts. (Prolific shows the participant no reason.)"""
        if amount_cents <= 0:
            raise ProlificRefusal("a bonus needs a positive amount")
        entry = await self.records.bonus(key)
        if entry is None:
            entry = await self._new_bonus(submission_id, amount_cents, key, budget_cents)
        S = ProlificBonusState
        if entry.state == S.PAYING:
            raise BonusUncertain(
                f"bonus {key}: payment {entry.bulk_id} was asked for and not confirmed; it is not paid again. "
                "Check the study's bonuses on Prolific."
            )
        if entry.state == S.CREATED:
            if not await self.records.move_bonus(key, was=S.CREATED, to=S.PAYING):  # another caller pays it
                raise BonusUncertain(f"bonus {key} is being paid by another request just now; look again shortly")
            try:
                await self.api.call("POST", f"/bulk-bonus-payments/{entry.bulk_id}/pay/", idempotent=False)
            except ProlificError as exc:
                if 400 <= exc.status < 500:  # refused outright (e.g. funds): nothing was paid
                    await self.records.move_bonus(key, was=S.PAYING, to=S.CREATED)
                raise
            await self.records.move_bonus(key, was=S.PAYING, to=S.PAID)
            entry.state = S.PAID
        return _bonus(entry)

    async def _new_bonus(self, submission_id: str, amount_cents: int, key: str, budget_cents: int) -> BonusEntry:
        """Create the bulk bonus payment (not yet paid) and record it, within the budget. Two callers racing on
        one key may each create one; only the first recorded is ever paid."""
        current = await self._submission(submission_id)
        run_id = await self.records.run_of_study(current.recruitment_id)
        if not run_id:
            raise ProlificRefusal(f"submission {submission_id} is not on a study Parley published")
        cost = self._cost(amount_cents)
        studies = await self._studies_cents(run_id)
        self._check_budget("this bonus", studies + await self.records.bonuses_cents(run_id), cost.total_cents,
                           budget_cents)
        csv = f"{submission_id},{amount_cents // 100}.{amount_cents % 100:02d}\n"
        made = await self.api.call("POST", "/submissions/bonus-payments/", idempotent=False,
                                   json={"study_id": current.recruitment_id, "csv_bonuses": csv})
        entry = BonusEntry(
            account=self.account, key=key, run_id=run_id, submission_id=submission_id, worker_id=current.worker_id,
            amount_cents=amount_cents, fee_cents=cost.fee_cents, vat_cents=cost.vat_cents, bulk_id=str(made["id"]),
        )
        return await self.records.admit_bonus(
            entry, budget_cents=budget_cents, studies_cents=studies,
            refuse=lambda spent: _over_budget("this bonus", spent + cost.total_cents, budget_cents),
        )

    async def balance(self) -> dict[str, Any]:
        """The first workspace's balance, as Prolific reports it (minor units, with its currency)."""
        [workspace, *_] = await self.api.pages("/workspaces/")
        return dict(await self.api.call("GET", f"/workspaces/{workspace['id']}/balance/"))

    # ---- the block list ---------------------------------------------------------------------------

    async def _block_group(self) -> str:
        return await self._group(BLOCK_GROUP)

    async def _group(self, name: str) -> str:
        """The participant group `name` (the block list, or a Parley exclusion list), made on first use and
        found again by its name."""
        async def make() -> str:
            groups = await self.api.pages("/participant-groups/")
            found = next((g for g in groups if g.get("name") == name), None)
            if found is None:
                found = await self.api.call("POST", "/participant-groups/", json={"name": name}, idempotent=False)
            return str(found["id"])

        return await self.records.group(name, make)

    async def exclude(self, name: str, worker_id: str) -> None:
        group = await self._group(name)
        await self.api.call("POST", f"/participant-groups/{group}/participants/",
                            json={"participant_ids": [worker_id]}, idempotent=True)

    async def block(self, worker_id: str, reason: str) -> None:
        """Add the participant to Parley's block-list group: every Parley study filters that group out."""
        group = await self._block_group()
        await self.api.call("POST", f"/participant-groups/{group}/participants/",
                            json={"participant_ids": [worker_id]}, idempotent=True)

    async def unblock(self, worker_id: str) -> None:
        group = await self._block_group()
        await self.api.call("DELETE", f"/participant-groups/{group}/participants/",
                            json={"participant_ids": [worker_id]}, idempotent=True)


def _over_budget(what: str, total: int, budget_cents: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"{what} would bring the run to {total} (minor units, with Prolific's fee and VAT), past its budget of "
        f"{budget_cents}"
    )


def _bonus(entry: BonusEntry) -> Bonus:
    return Bonus(
        key=entry.key, submission_id=entry.submission_id, worker_id=entry.worker_id,
        cost=Cost(entry.amount_cents, entry.fee_cents, entry.vat_cents), paid=entry.state == ProlificBonusState.PAID,
        provider_ids=(entry.bulk_id,),
    )


__all__ = [
    "BonusUncertain", "Codes", "NotRecruiting", "ProlificError", "ProlificProvider", "ProlificRefusal", "codes_for",
]
