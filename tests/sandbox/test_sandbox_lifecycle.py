"""Time-driven MTurk semantics under a fake clock: abandonment, auto-approval, expiry."""

from __future__ import annotations

from typing import Any

import pytest

from server.sandbox import AssignmentStatus, WorkerRefusal
from server.sandbox.model import Assignment, IllegalTransition
from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import create_hit


def test_assignment_not_submitted_in_time_is_abandoned_and_frees_the_slot(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), AssignmentDurationInSeconds=300)
    late = server.sandbox.accept("AWORKER1", hit["HITId"])

    server.clock.advance(301)

    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["NumberOfAssignmentsAvailable"] == 1
    with pytest.raises(WorkerRefusal) as refused:
        server.sandbox.submit(late.assignment_id, {"a": "too late"})
    assert refused.value.code == "assignment_expired"
    assert server.sandbox.state.assignments[late.assignment_id].status is AssignmentStatus.ABANDONED
    assert server.sandbox.accept("AWORKER2", hit["HITId"]).status is AssignmentStatus.ACCEPTED


def test_submitted_work_is_approved_after_the_auto_approval_delay(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), AutoApprovalDelayInSeconds=3600)
    assignment = server.sandbox.accept("AWORKER1", hit["HITId"])
    server.sandbox.submit(assignment.assignment_id, {"a": "1"})
    submitted_at = server.clock.now

    server.clock.advance(3599)
    before = mturk.get_assignment(AssignmentId=assignment.assignment_id)["Assignment"]
    server.clock.advance(1)
    after = mturk.get_assignment(AssignmentId=assignment.assignment_id)["Assignment"]

    assert before["AssignmentStatus"] == "Submitted"
    assert before["AutoApprovalTime"].timestamp() == submitted_at + 3600
    assert after["AssignmentStatus"] == "Approved"
    assert after["ApprovalTime"].timestamp() == submitted_at + 3600


def test_work_accepted_before_expiry_can_still_be_submitted_after_it(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), LifetimeInSeconds=60, AssignmentDurationInSeconds=600)
    assignment = server.sandbox.accept("AWORKER1", hit["HITId"])
    server.clock.advance(120)

    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Unassignable"
    server.sandbox.submit(assignment.assignment_id, {"a": "1"})
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"


def test_extending_an_expired_hit_makes_it_assignable_again(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), LifetimeInSeconds=60)
    server.clock.advance(120)

    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=server.clock.now + 600)

    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Assignable"


def test_assignment_status_refuses_illegal_moves() -> None:
    assignment = Assignment(assignment_id="3A", hit_id="3H", worker_id="AW", accept_time=0, deadline=1)
    assignment.move_to(AssignmentStatus.SUBMITTED)

    with pytest.raises(IllegalTransition, match="got Submitted"):
        assignment.move_to(AssignmentStatus.RETURNED)
