"""Requester operations on HIT types and HITs."""

from __future__ import annotations

from typing import Any

from server.sandbox.errors import RequestError, bad_hit_state
from server.sandbox.lifecycle import HITStatus, hit_counts, hit_status
from server.sandbox.model import HIT, HITType
from server.sandbox.money import parse_cents, reward_fee_cents
from server.sandbox.quals import SYSTEM_TYPES
from server.sandbox.question import parse_question
from server.sandbox.registry import Ctx, check_range, new_id, operation
from server.sandbox.wire import hit_out, page

MAX_SECONDS = 365 * 24 * 3600
MAX_AUTO_APPROVAL_DELAY = 30 * 24 * 3600
MAX_ASSIGNMENTS = 1_000_000
_VALUELESS = {"Exists", "DoesNotExist"}
_SINGLE_VALUE = {
    "LessThan",
    "LessThanOrEqualTo",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "EqualTo",
    "NotEqualTo",
}


def _check_requirement(ctx: Ctx, requirement: dict[str, Any]) -> None:
    type_id = requirement["QualificationTypeId"]
    if type_id not in SYSTEM_TYPES:
        ctx.qualification_type(type_id)
    comparator = requirement["Comparator"]
    values = (requirement.get("IntegerValues") or []) + (requirement.get("LocaleValues") or [])
    if comparator in _VALUELESS and values:
        raise RequestError(f"The comparator {comparator} takes no IntegerValues or LocaleValues.")
    if comparator not in _VALUELESS and not values:
        raise RequestError(f"The comparator {comparator} needs IntegerValues or LocaleValues.")
    if comparator in _SINGLE_VALUE and len(values) != 1:
        raise RequestError(f"The comparator {comparator} takes exactly one value.")


def _hit_type_from(ctx: Ctx, params: dict[str, Any]) -> HITType:
    """The HIT type with these properties: the existing one if any (as MTurk does), else a new one."""
    duration = params["AssignmentDurationInSeconds"]
    check_range("AssignmentDurationInSeconds", duration, 30, MAX_SECONDS)
    delay = params.get("AutoApprovalDelayInSeconds", MAX_AUTO_APPROVAL_DELAY)
    check_range("AutoApprovalDelayInSeconds", delay, 0, MAX_AUTO_APPROVAL_DELAY)
    requirements = params.get("QualificationRequirements") or []
    for requirement in requirements:
        _check_requirement(ctx, requirement)
    wanted = HITType(
        hit_type_id="",
        hit_group_id="",
        title=params["Title"],
        description=params["Description"],
        keywords=params.get("Keywords") or "",
        reward_cents=parse_cents(params["Reward"], "Reward"),
        assignment_duration=duration,
        auto_approval_delay=delay,
        qualification_requirements=requirements,
    )
    ignore = {"hit_type_id", "hit_group_id"}
    for existing in ctx.state.hit_types.values():
        if existing.model_dump(exclude=ignore) == wanted.model_dump(exclude=ignore):
            return existing
    created = wanted.model_copy(update={"hit_type_id": new_id(), "hit_group_id": new_id()})
    ctx.state.hit_types[created.hit_type_id] = created
    return created


def _check_hit_params(ctx: Ctx, params: dict[str, Any]) -> None:
    """Everything about the HIT itself, checked before anything (even a HIT type) is created."""
    ctx.refuse_used_token("CreateHIT", params.get("UniqueRequestToken"))
    if params.get("Question") is None:
        raise RequestError("The Parley sandbox needs a Question (HITLayoutId is not supported).")
    parse_question(params["Question"])
    check_range("LifetimeInSeconds", params["LifetimeInSeconds"], 30, MAX_SECONDS)
    check_range("MaxAssignments", params.get("MaxAssignments", 1), 1, MAX_ASSIGNMENTS)


def _create_hit(ctx: Ctx, hit_type: HITType, params: dict[str, Any], operation_name: str) -> dict[str, Any]:
    token = params.get("UniqueRequestToken")
    lifetime = params["LifetimeInSeconds"]
    max_assignments = params.get("MaxAssignments", 1)
    charge = hit_type.reward_cents + reward_fee_cents(hit_type.reward_cents, max_assignments)
    ctx.require_funds(charge * max_assignments)
    hit = HIT(
        hit_id=new_id(),
        hit_type_id=hit_type.hit_type_id,
        question=params["Question"],
        creation_time=ctx.now,
        expiration=ctx.now + lifetime,
        max_assignments=max_assignments,
        requester_annotation=params.get("RequesterAnnotation"),
        charge_cents=charge,
    )
    ctx.state.hits[hit.hit_id] = hit
    ctx.remember_token("CreateHIT", token, operation_name, hit.hit_id)
    return {"HIT": hit_out(ctx.state, hit, ctx.now)}


@operation("CreateHITType")
def create_hit_type(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    return {"HITTypeId": _hit_type_from(ctx, params).hit_type_id}


@operation("CreateHIT")
def create_hit(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    _check_hit_params(ctx, params)
    reward = parse_cents(params["Reward"], "Reward")
    max_assignments = params.get("MaxAssignments", 1)
    ctx.require_funds((reward + reward_fee_cents(reward, max_assignments)) * max_assignments)
    return _create_hit(ctx, _hit_type_from(ctx, params), params, "CreateHIT")


@operation("CreateHITWithHITType")
def create_hit_with_hit_type(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    hit_type = ctx.state.hit_types.get(params["HITTypeId"])
    if hit_type is None:
        raise RequestError(f"HITType {params['HITTypeId']} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist")
    _check_hit_params(ctx, params)
    return _create_hit(ctx, hit_type, params, "CreateHITWithHITType")


@operation("GetHIT", mutates=False)
def get_hit(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    return {"HIT": hit_out(ctx.state, ctx.hit(params["HITId"]), ctx.now)}


@operation("ListHITs", mutates=False)
def list_hits(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    hits = [hit for hit in ctx.state.hits.values() if not hit.disposed]
    chunk, extra = page(hits, params)
    return {**extra, "HITs": [hit_out(ctx.state, hit, ctx.now) for hit in chunk]}


@operation("ListReviewableHITs", mutates=False)
def list_reviewable_hits(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    wanted = HITStatus(params.get("Status") or "Reviewable")
    type_id = params.get("HITTypeId")
    hits = [
        hit
        for hit in ctx.state.hits.values()
        if hit_status(ctx.state, hit, ctx.now) is wanted and (type_id is None or hit.hit_type_id == type_id)
    ]
    chunk, extra = page(hits, params)
    return {**extra, "HITs": [hit_out(ctx.state, hit, ctx.now) for hit in chunk]}


def _live_hit(ctx: Ctx, hit_id: str) -> HIT:
    hit = ctx.hit(hit_id)
    if hit.disposed:
        raise bad_hit_state(HITStatus.DISPOSED, "Assignable, Unassignable, Reviewable, Reviewing")
    return hit


@operation("UpdateExpirationForHIT")
def update_expiration_for_hit(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    hit = _live_hit(ctx, params["HITId"])
    expire_at = float(params["ExpireAt"])
    hit.expiration = expire_at if expire_at > ctx.now else min(hit.expiration, ctx.now)
    return {}


@operation("UpdateHITReviewStatus")
def update_hit_review_status(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    hit = _live_hit(ctx, params["HITId"])
    status = hit_status(ctx.state, hit, ctx.now)
    revert = bool(params.get("Revert"))
    needed = HITStatus.REVIEWING if revert else HITStatus.REVIEWABLE
    if status is not needed:
        raise bad_hit_state(status, needed)
    hit.reviewing = not revert
    return {}


@operation("DeleteHIT")
def delete_hit(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    """MTurk disposes only a Reviewable/Reviewing HIT whose submitted work is all approved or rejected."""
    hit = ctx.hit(params["HITId"])
    if hit.disposed:
        return {}
    status = hit_status(ctx.state, hit, ctx.now)
    if status not in (HITStatus.REVIEWABLE, HITStatus.REVIEWING) or hit_counts(ctx.state, hit, ctx.now).submitted:
        raise bad_hit_state(status, "Reviewing, Reviewable")
    hit.disposed = True
    return {}
