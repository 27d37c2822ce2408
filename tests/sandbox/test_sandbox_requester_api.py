"""The requester API through real boto3 against a real server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import create_hit, hit_params


def test_hit_type_and_hits_created_with_it_share_the_type(server: SandboxServer, mturk: Any) -> None:
    hit_type_id = mturk.create_hit_type(
        Title="Chat", Description="Talk", Reward="0.50", AssignmentDurationInSeconds=600, Keywords="chat"
    )["HITTypeId"]
    again = mturk.create_hit_type(
        Title="Chat", Description="Talk", Reward="0.50", AssignmentDurationInSeconds=600, Keywords="chat"
    )["HITTypeId"]
    hit = mturk.create_hit_with_hit_type(
        HITTypeId=hit_type_id,
        MaxAssignments=1,
        LifetimeInSeconds=3600,
        Question=server.external_question(),
        RequesterAnnotation="run-7",
    )["HIT"]

    fetched = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert again == hit_type_id
    assert fetched["HITTypeId"] == hit_type_id
    assert fetched["Title"] == "Chat"
    assert fetched["Reward"] == "0.50"
    assert fetched["RequesterAnnotation"] == "run-7"
    assert fetched["HITStatus"] == "Assignable"
    assert fetched["NumberOfAssignmentsAvailable"] == 1
    assert fetched["CreationTime"] == datetime.fromtimestamp(server.clock.now, UTC).astimezone(
        fetched["CreationTime"].tzinfo
    )
    assert (fetched["Expiration"] - fetched["CreationTime"]).total_seconds() == 3600


def test_list_hits_pages_with_next_token(server: SandboxServer, mturk: Any) -> None:
    created = [create_hit(mturk, server.external_question(), RequesterAnnotation=str(i))["HITId"] for i in range(7)]

    seen, token, pages = [], None, 0
    while True:
        reply = mturk.list_hits(MaxResults=3, **({"NextToken": token} if token else {}))
        seen += [hit["HITId"] for hit in reply["HITs"]]
        assert reply["NumResults"] == len(reply["HITs"])
        pages += 1
        token = reply.get("NextToken")
        if token is None:
            break

    assert seen == created
    assert pages == 3


def test_create_hit_with_a_used_token_is_refused_and_creates_nothing(server: SandboxServer, mturk: Any) -> None:
    first = create_hit(mturk, server.external_question(), UniqueRequestToken="run-7-slot-1")

    with pytest.raises(mturk.exceptions.RequestError) as refused:
        create_hit(mturk, server.external_question(), UniqueRequestToken="run-7-slot-1")

    assert 'The idempotency token "run-7-slot-1" has already been processed.' in str(refused.value)
    assert first["HITId"] in str(refused.value)
    assert [hit["HITId"] for hit in mturk.list_hits()["HITs"]] == [first["HITId"]]


def test_a_token_is_forgotten_after_24_hours(server: SandboxServer, mturk: Any) -> None:
    create_hit(mturk, server.external_question(), UniqueRequestToken="t", LifetimeInSeconds=60)
    server.clock.advance(24 * 3600)

    create_hit(mturk, server.external_question(), UniqueRequestToken="t")

    assert len(mturk.list_hits()["HITs"]) == 2


def test_service_model_violations_surface_as_request_error(server: SandboxServer) -> None:
    unchecked = server.mturk(validate=False)
    bad_calls: list[tuple[str, dict[str, Any], str]] = [
        ("create_hit", {"Title": "x"}, "Value null at 'Description' failed to satisfy constraint"),
        ("create_hit", hit_params(server.external_question(), Reward="1.005"), "regular expression pattern"),
        ("list_hits", {"MaxResults": 500}, "less than or equal to 100"),
        ("create_worker_block", {"WorkerId": "bad id", "Reason": "x"}, "at 'WorkerId'"),
        ("list_reviewable_hits", {"Status": "Lost"}, "enum value set: [Reviewable, Reviewing]"),
        ("get_hit", {"HITId": 5}, "Member must be a string"),
    ]
    for method, params, expected in bad_calls:
        with pytest.raises(unchecked.exceptions.RequestError) as refused:
            getattr(unchecked, method)(**params)
        assert expected in refused.value.response["Error"]["Message"], method
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert unchecked.list_hits()["HITs"] == []


def test_unknown_ids_are_request_errors_with_turk_error_codes(mturk: Any) -> None:
    with pytest.raises(mturk.exceptions.RequestError) as refused:
        mturk.get_hit(HITId="3NOSUCHHIT")
    assert refused.value.response["Error"]["Message"].startswith("Hit 3NOSUCHHIT does not exist.")
    assert refused.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.HITDoesNotExist"

    with pytest.raises(mturk.exceptions.RequestError, match="Assignment 3NOPE does not exist"):
        mturk.approve_assignment(AssignmentId="3NOPE")


def test_malformed_requests_get_4xx_not_500(server: SandboxServer, http: httpx.Client) -> None:
    target = "MTurkRequesterServiceV20170117.ListHITs"
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    not_json = http.post("/sandbox/mturk", content=b"{nope", headers={**headers, "X-Amz-Target": target})
    not_object = http.post("/sandbox/mturk", content=b"[1]", headers={**headers, "X-Amz-Target": target})
    unknown = http.post("/sandbox/mturk", content=b"{}", headers={**headers, "X-Amz-Target": "Nope.Op"})

    assert not_json.status_code == 400
    assert not_json.json()["__type"] == "RequestError"
    assert not_object.status_code == 400
    assert unknown.status_code == 400
    assert unknown.json()["__type"] == "UnknownOperationException"


def test_question_must_be_external_or_html_with_https_off_loopback(server: SandboxServer, mturk: Any) -> None:
    remote = server.external_question().replace(server.task_url, "http://example.org/task")

    with pytest.raises(mturk.exceptions.RequestError, match="must be an https URL"):
        create_hit(mturk, remote)
    with pytest.raises(mturk.exceptions.RequestError, match="parsing the XML"):
        create_hit(mturk, "<ExternalQuestion>")
    create_hit(mturk, server.external_question().replace(server.task_url, "https://example.org/task"))


def test_expiring_in_the_past_makes_the_hit_reviewable_now(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question())

    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1))

    fetched = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert fetched["HITStatus"] == "Reviewable"
    assert fetched["NumberOfAssignmentsAvailable"] == 0
    assert fetched["Expiration"].timestamp() == server.clock.now
    assert [h["HITId"] for h in mturk.list_reviewable_hits()["HITs"]] == [hit["HITId"]]


def test_lifetime_ends_a_hit_when_the_clock_passes_it(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), LifetimeInSeconds=120)

    server.clock.advance(121)

    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"


def test_review_status_moves_between_reviewable_and_reviewing(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question())
    with pytest.raises(mturk.exceptions.RequestError, match="currently in the state 'Assignable'"):
        mturk.update_hit_review_status(HITId=hit["HITId"])
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1))

    mturk.update_hit_review_status(HITId=hit["HITId"], Revert=False)
    reviewing = mturk.list_reviewable_hits(Status="Reviewing")["HITs"]
    mturk.update_hit_review_status(HITId=hit["HITId"], Revert=True)

    assert [h["HITStatus"] for h in reviewing] == ["Reviewing"]
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"


def test_delete_hit_refuses_while_work_is_pending_or_unreviewed(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question())
    with pytest.raises(mturk.exceptions.RequestError) as open_hit:
        mturk.delete_hit(HITId=hit["HITId"])
    assignment = server.sandbox.accept("AWORKER1", hit["HITId"])
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1))
    with pytest.raises(mturk.exceptions.RequestError, match="'Unassignable'"):
        mturk.delete_hit(HITId=hit["HITId"])
    server.sandbox.submit(assignment.assignment_id, {"answer": "yes"})
    with pytest.raises(mturk.exceptions.RequestError, match=re.escape("'Reviewable'.  This operation can be called")):
        mturk.delete_hit(HITId=hit["HITId"])
    mturk.approve_assignment(AssignmentId=assignment.assignment_id)

    mturk.delete_hit(HITId=hit["HITId"])
    mturk.delete_hit(HITId=hit["HITId"])

    assert "with a status of: Reviewing, Reviewable" in str(open_hit.value)
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Disposed"
    assert mturk.list_hits()["HITs"] == []


def test_client_error_is_a_botocore_client_error(mturk: Any) -> None:
    with pytest.raises(ClientError) as refused:
        mturk.get_assignment(AssignmentId="3MISSING")
    assert refused.value.response["Error"]["Code"] == "RequestError"


def test_list_assignments_filters_by_status_and_pages(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), MaxAssignments=5)
    ids = []
    for index in range(5):
        assignment = server.sandbox.accept(f"AWORKER{index}", hit["HITId"])
        server.sandbox.submit(assignment.assignment_id, {"n": str(index)})
        ids.append(assignment.assignment_id)
    for assignment_id in ids[:3]:
        mturk.approve_assignment(AssignmentId=assignment_id)

    first = mturk.list_assignments_for_hit(HITId=hit["HITId"], AssignmentStatuses=["Approved"], MaxResults=2)
    rest = mturk.list_assignments_for_hit(
        HITId=hit["HITId"], AssignmentStatuses=["Approved"], MaxResults=2, NextToken=first["NextToken"]
    )
    submitted = mturk.list_assignments_for_hit(HITId=hit["HITId"], AssignmentStatuses=["Submitted"])

    assert [a["AssignmentId"] for a in first["Assignments"] + rest["Assignments"]] == ids[:3]
    assert "NextToken" not in rest
    assert [a["AssignmentId"] for a in submitted["Assignments"]] == ids[3:]
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["NumberOfAssignmentsCompleted"] == 3


def test_qualification_types_are_listed_and_names_are_unique(mturk: Any) -> None:
    created = mturk.create_qualification_type(
        Name="parley-onboarding-failed", Description="Failed onboarding", QualificationTypeStatus="Active"
    )["QualificationType"]

    with pytest.raises(mturk.exceptions.RequestError, match="already created a QualificationType with this name"):
        mturk.create_qualification_type(
            Name="parley-onboarding-failed", Description="again", QualificationTypeStatus="Active"
        )
    listed = mturk.list_qualification_types(MustBeRequestable=False, MustBeOwnedByCaller=True, Query="onboarding")

    assert [q["QualificationTypeId"] for q in listed["QualificationTypes"]] == [created["QualificationTypeId"]]
    assert (
        mturk.get_qualification_type(QualificationTypeId=created["QualificationTypeId"])["QualificationType"]["Name"]
        == "parley-onboarding-failed"
    )


def test_a_refused_create_hit_leaves_no_hit_type_behind(server: SandboxServer, mturk: Any) -> None:
    with pytest.raises(mturk.exceptions.RequestError):
        create_hit(mturk, "<HTMLQuestion/>", Title="Never made")

    assert all(hit_type.title != "Never made" for hit_type in server.sandbox.state.hit_types.values())
