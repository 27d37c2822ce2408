"""Parley's qualification types on an account: created once, remembered, granted and revoked.

Each but one is used as a `DoesNotExist` requirement, so MTurk hides the HIT from a worker who holds it: a
soft block (account-wide), an onboarding failure (per task), "at this run's per-worker cap" and the run's
block list (per run). The run's allow list is the `Exists` one: only workers granted it see the HITs.
"""

from __future__ import annotations

import logging

from server.providers.mturk import MTurk, MTurkError
from server.store.hits import HitStore

log = logging.getLogger(__name__)

SOFT_BLOCK = "Parley soft block"


def onboarding_failed_name(task_name: str) -> str:
    return f"Parley onboarding failed: {task_name}"


def at_cap_name(run_id: str) -> str:
    return f"Parley per-worker cap reached: {run_id}"


def allow_list_name(run_id: str) -> str:
    return f"Parley allow list: {run_id}"


def block_list_name(run_id: str) -> str:
    return f"Parley block list: {run_id}"


class Qualifications:
    def __init__(self, mturk: MTurk, hit_store: HitStore) -> None:
        self.mturk = mturk
        self.hit_store = hit_store
        self._held: dict[tuple[str, str], bool] = {}  # (type id, worker) -> granted, as far as we know

    async def type_id(self, name: str, description: str = "") -> str:
        """The id of Parley's qualification type with this name, creating it on the account the first time."""
        known = await self.hit_store.qualification(self.mturk.account, name=name)
        if known is not None:
            return known
        try:
            reply = await self.mturk.call(
                "CreateQualificationType", Name=name, Keywords="parley",
                Description=description or f"Set by Parley: {name}. It hides some of this requester's HITs.",
                QualificationTypeStatus="Active",
            )
            type_id = str(reply["QualificationType"]["QualificationTypeId"])
        except MTurkError as exc:
            if "AlreadyExists" not in exc.code:
                raise
            type_id = await self._find(name)  # made by an earlier database on the same account
        await self.hit_store.remember_qualification(self.mturk.account, name=name, type_id=type_id)
        return type_id

    async def _find(self, name: str) -> str:
        async for item in self.mturk.pages(
            "ListQualificationTypes", "QualificationTypes", Query=name, MustBeRequestable=False,
            MustBeOwnedByCaller=True,
        ):
            if item.get("Name") == name:
                return str(item["QualificationTypeId"])
        raise MTurkError("ListQualificationTypes", "NotFound", f"qualification type {name!r} exists but was not listed")

    async def grant(self, type_id: str, worker_id: str) -> None:
        if self._held.get((type_id, worker_id)) is True:
            return
        await self.mturk.call(
            "AssociateQualificationWithWorker", QualificationTypeId=type_id, WorkerId=worker_id,
            IntegerValue=1, SendNotification=False,
        )
        self._held[(type_id, worker_id)] = True

    async def revoke(self, type_id: str, worker_id: str) -> None:
        if self._held.get((type_id, worker_id)) is False:
            return
        try:
            await self.mturk.call(
                "DisassociateQualificationFromWorker", QualificationTypeId=type_id, WorkerId=worker_id,
                Reason="Parley lifted this restriction.",
            )
        except MTurkError as exc:
            if "DoesNotExist" not in exc.code:
                raise
        self._held[(type_id, worker_id)] = False
