"""Requests checked against botocore's service model, as MTurk's front end checks them."""

from __future__ import annotations

import pytest

from server.sandbox.errors import RequestError
from server.sandbox.registry import OPERATIONS
from server.sandbox.validation import operation_names, validate_input


def test_valid_input_passes_unchanged() -> None:
    params = {"HITId": "3ABC", "ExpireAt": 1_800_000_000}

    assert validate_input("UpdateExpirationForHIT", params) is params


def test_every_problem_is_listed_in_one_request_error() -> None:
    with pytest.raises(RequestError) as refused:
        validate_input("SendBonus", {"WorkerId": "lowercase", "BonusAmount": "abc", "AssignmentId": "3A"})

    message = refused.value.message
    assert message.startswith("3 validation errors detected: ")
    assert "at 'WorkerId' failed to satisfy constraint: Member must satisfy regular expression pattern" in message
    assert "at 'BonusAmount'" in message
    assert "Value null at 'Reason' failed to satisfy constraint: Member must not be null" in message


def test_nested_members_are_checked_with_their_path() -> None:
    requirement = {"QualificationTypeId": "X", "Comparator": "Roughly", "IntegerValues": ["1"]}

    with pytest.raises(RequestError) as refused:
        validate_input(
            "CreateHITType",
            {
                "AssignmentDurationInSeconds": 60,
                "Reward": "1",
                "Title": "t",
                "Description": "d",
                "QualificationRequirements": [requirement],
            },
        )

    assert "at 'QualificationRequirements.1.member.Comparator'" in refused.value.message
    assert "at 'QualificationRequirements.1.member.IntegerValues.1.member'" in refused.value.message


def test_booleans_are_not_integers_and_a_body_must_be_an_object() -> None:
    with pytest.raises(RequestError, match="Member must be an integer"):
        validate_input("ListHITs", {"MaxResults": True})
    with pytest.raises(RequestError, match="Member must be an object"):
        validate_input("ListHITs", ["x"])


def test_the_sandbox_serves_the_operations_parley_needs_and_all_are_in_the_model() -> None:
    needed = {
        "CreateHITType",
        "CreateHITWithHITType",
        "CreateHIT",
        "GetHIT",
        "ListHITs",
        "UpdateExpirationForHIT",
        "UpdateHITReviewStatus",
        "DeleteHIT",
        "ListReviewableHITs",
        "ListAssignmentsForHIT",
        "GetAssignment",
        "ApproveAssignment",
        "RejectAssignment",
        "SendBonus",
        "ListBonusPayments",
        "GetAccountBalance",
        "CreateQualificationType",
        "GetQualificationType",
        "ListQualificationTypes",
        "GetQualificationScore",
        "AssociateQualificationWithWorker",
        "DisassociateQualificationFromWorker",
        "ListWorkersWithQualificationType",
        "CreateWorkerBlock",
        "DeleteWorkerBlock",
        "ListWorkerBlocks",
        "NotifyWorkers",
    }

    assert set(OPERATIONS) == needed
    assert needed <= operation_names()
