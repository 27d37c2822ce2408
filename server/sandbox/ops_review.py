"""Requester operations on submitted work and money: review, bonuses, balance."""

from __future__ import annotations

from typing import Any

from server.sandbox.errors import RequestError, bad_assignment_state
from server.sandbox.lifecycle import balance
from server.sandbox.model import AssignmentStatus, Bonus
from server.sandbox.money import bonus_fee_cents, format_cents, parse_cents
from server.sandbox.registry import Ctx, operation
from server.sandbox.wire import assignment_out, bonus_out, hit_out, page

MAX_FEEDBACK_CHARACTERS = 1024


def _check_feedback(params: dict[str, Any]) -> str | None:
    feedback: str | None = params.get("RequesterFeedback")
    if feedback is not None and len(feedback) > MAX_FEEDBACK_CHARACTERS:
        raise RequestError(f"RequesterFeedback must be at most {MAX_FEEDBACK_CHARACTERS} characters.")
    return feedback


@operation("ListAssignmentsForHIT", mutates=False)
def list_assignments_for_hit(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    hit = ctx.hit(params["HITId"])
    wanted = set(params.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"])
    assignments = [
        ctx.state.assignments[assignment_id]
        for assignment_id in hit.assignment_ids
        if ctx.state.assignments[assignment_id].status.value in wanted
    ]
    chunk, extra = page(assignments, params)
    return {**extra, "Assignments": [assignment_out(assignment) for assignment in chunk]}


@operation("GetAssignment", mutates=False)
def get_assignment(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    assignment = ctx.assignment(params["AssignmentId"])
    hit = ctx.hit(assignment.hit_id)
    return {"Assignment": assignment_out(assignment), "HIT": hit_out(ctx.state, hit, ctx.now)}


@operation("ApproveAssignment")
def approve_assignment(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    assignment = ctx.assignment(params["AssignmentId"])
    feedback = _check_feedback(params)
    override = bool(params.get("OverrideRejection"))
    allowed = {AssignmentStatus.SUBMITTED, AssignmentStatus.REJECTED} if override else {AssignmentStatus.SUBMITTED}
    if assignment.status not in allowed:
        raise bad_assignment_state(", ".join(sorted(allowed)))
    if assignment.status is AssignmentStatus.REJECTED and ctx.hit(assignment.hit_id).disposed:
        raise bad_assignment_state("Submitted")
    assignment.move_to(AssignmentStatus.APPROVED)
    assignment.approval_time = ctx.now
    assignment.rejection_time = None
    if feedback is not None:
        assignment.requester_feedback = feedback
    return {}


@operation("RejectAssignment")
def reject_assignment(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    assignment = ctx.assignment(params["AssignmentId"])
    feedback = _check_feedback(params)
    if assignment.status is not AssignmentStatus.SUBMITTED:
        raise bad_assignment_state("Submitted")
    assignment.move_to(AssignmentStatus.REJECTED)
    assignment.rejection_time = ctx.now
    assignment.requester_feedback = feedback
    return {}


@operation("SendBonus")
def send_bonus(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    token = params.get("UniqueRequestToken")
    ctx.refuse_used_token("SendBonus", token)
    assignment = ctx.assignment(params["AssignmentId"])
    if assignment.worker_id != params["WorkerId"]:
        raise RequestError(
            f"Assignment {assignment.assignment_id} was not worked by {params['WorkerId']}; "
            "a bonus must go to the worker of the assignment."
        )
    amount = parse_cents(params["BonusAmount"], "BonusAmount")
    if amount <= 0:
        raise RequestError("BonusAmount must be greater than 0.00.")
    fee = bonus_fee_cents(amount)
    ctx.require_funds(amount + fee)
    ctx.state.bonuses.append(
        Bonus(
            worker_id=assignment.worker_id,
            assignment_id=assignment.assignment_id,
            hit_id=assignment.hit_id,
            amount_cents=amount,
            fee_cents=fee,
            reason=params["Reason"],
            grant_time=ctx.now,
        )
    )
    ctx.remember_token("SendBonus", token, "SendBonus", assignment.assignment_id)
    return {}


@operation("ListBonusPayments", mutates=False)
def list_bonus_payments(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    hit_id, assignment_id = params.get("HITId"), params.get("AssignmentId")
    if (hit_id is None) == (assignment_id is None):
        raise RequestError("Provide exactly one of HITId and AssignmentId.")
    if hit_id is not None:
        ctx.hit(hit_id)
    bonuses = [
        bonus
        for bonus in ctx.state.bonuses
        if (hit_id is not None and bonus.hit_id == hit_id) or bonus.assignment_id == assignment_id
    ]
    chunk, extra = page(bonuses, params)
    return {**extra, "BonusPayments": [bonus_out(bonus) for bonus in chunk]}


@operation("GetAccountBalance", mutates=False)
def get_account_balance(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    now_balance = balance(ctx.state, ctx.now)
    return {
        "AvailableBalance": format_cents(now_balance.available_cents),
        "OnHoldBalance": format_cents(now_balance.on_hold_cents),
    }
