"""Records as MTurk's response structures, and MTurk-style pagination."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from server.sandbox.errors import RequestError
from server.sandbox.lifecycle import hit_counts, hit_status
from server.sandbox.model import HIT, Assignment, Bonus, Grant, QualificationType, SandboxState
from server.sandbox.money import format_cents
from server.sandbox.quals import LOCALE, SYSTEM_TYPES, Held

DEFAULT_PAGE_SIZE = 10
T = TypeVar("T")


def _without_none(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


def hit_out(state: SandboxState, hit: HIT, now: float) -> dict[str, Any]:
    hit_type = state.hit_types[hit.hit_type_id]
    counts = hit_counts(state, hit, now)
    return _without_none(
        {
            "HITId": hit.hit_id,
            "HITTypeId": hit.hit_type_id,
            "HITGroupId": hit_type.hit_group_id,
            "CreationTime": hit.creation_time,
            "Title": hit_type.title,
            "Description": hit_type.description,
            "Question": hit.question,
            "Keywords": hit_type.keywords,
            "HITStatus": hit_status(state, hit, now).value,
            "MaxAssignments": hit.max_assignments,
            "Reward": format_cents(hit_type.reward_cents),
            "AutoApprovalDelayInSeconds": hit_type.auto_approval_delay,
            "Expiration": hit.expiration,
            "AssignmentDurationInSeconds": hit_type.assignment_duration,
            "RequesterAnnotation": hit.requester_annotation,
            "QualificationRequirements": hit_type.qualification_requirements,
            "HITReviewStatus": "NotReviewed",
            "NumberOfAssignmentsPending": counts.pending,
            "NumberOfAssignmentsAvailable": counts.available,
            "NumberOfAssignmentsCompleted": counts.completed,
        }
    )


def assignment_out(assignment: Assignment) -> dict[str, Any]:
    return _without_none(
        {
            "AssignmentId": assignment.assignment_id,
            "WorkerId": assignment.worker_id,
            "HITId": assignment.hit_id,
            "AssignmentStatus": assignment.status.value,
            "AutoApprovalTime": assignment.auto_approval_time,
            "AcceptTime": assignment.accept_time,
            "SubmitTime": assignment.submit_time,
            "ApprovalTime": assignment.approval_time,
            "RejectionTime": assignment.rejection_time,
            "Deadline": assignment.deadline,
            "Answer": assignment.answer,
            "RequesterFeedback": assignment.requester_feedback,
        }
    )


def qualification_type_out(record: QualificationType) -> dict[str, Any]:
    return _without_none(
        {
            "QualificationTypeId": record.qualification_type_id,
            "CreationTime": record.creation_time,
            "Name": record.name,
            "Description": record.description,
            "Keywords": record.keywords,
            "QualificationTypeStatus": record.status,
            "Test": record.test,
            "TestDurationInSeconds": record.test_duration,
            "AnswerKey": record.answer_key,
            "RetryDelayInSeconds": record.retry_delay,
            "IsRequestable": record.test is not None or record.auto_granted,
            "AutoGranted": record.auto_granted,
            "AutoGrantedValue": record.auto_granted_value if record.auto_granted else None,
        }
    )


def system_qualification_type_out(type_id: str) -> dict[str, Any]:
    return {
        "QualificationTypeId": type_id,
        "CreationTime": 0.0,
        "Name": SYSTEM_TYPES[type_id],
        "Description": f"MTurk system qualification {SYSTEM_TYPES[type_id]}",
        "QualificationTypeStatus": "Active",
        "IsRequestable": False,
        "AutoGranted": False,
    }


def grant_out(grant: Grant) -> dict[str, Any]:
    return {
        "QualificationTypeId": grant.qualification_type_id,
        "WorkerId": grant.worker_id,
        "GrantTime": grant.grant_time,
        "IntegerValue": grant.integer_value,
        "Status": grant.status,
    }


def system_qualification_out(type_id: str, worker_id: str, held: Held) -> dict[str, Any]:
    record: dict[str, Any] = {"QualificationTypeId": type_id, "WorkerId": worker_id, "Status": "Granted"}
    if type_id == LOCALE:
        record["LocaleValue"] = _without_none({"Country": held.country, "Subdivision": held.subdivision})
    else:
        record["IntegerValue"] = held.integer
    return record


def bonus_out(bonus: Bonus) -> dict[str, Any]:
    return {
        "WorkerId": bonus.worker_id,
        "BonusAmount": format_cents(bonus.amount_cents),
        "AssignmentId": bonus.assignment_id,
        "Reason": bonus.reason,
        "GrantTime": bonus.grant_time,
    }


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"parley-sandbox:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        prefix, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix != "parley-sandbox" or int(offset) < 0:
            raise ValueError(prefix)
        return int(offset)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(
            f"The NextToken '{token}' is invalid.", "AWS.MechanicalTurk.InvalidParameterValue"
        ) from error


def page(items: Sequence[T], params: dict[str, Any]) -> tuple[Sequence[T], dict[str, Any]]:
    """One page of ``items`` per ``NextToken``/``MaxResults``, and the NextToken/NumResults to answer."""
    start = _decode_token(params["NextToken"]) if params.get("NextToken") else 0
    size = params.get("MaxResults") or DEFAULT_PAGE_SIZE
    chunk = items[start : start + size]
    extra: dict[str, Any] = {"NumResults": len(chunk)}
    if start + size < len(items):
        extra["NextToken"] = _encode_token(start + size)
    return chunk, extra
