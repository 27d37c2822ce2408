"""Fees, holds, refunds and bonuses, as GetAccountBalance reports them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from server.sandbox.money import bonus_fee_cents, format_cents, parse_cents, reward_fee_cents
from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import balance, create_hit


def test_fee_is_20_percent_below_10_assignments_and_40_from_10() -> None:
    assert reward_fee_cents(100, 9) == 20
    assert reward_fee_cents(100, 10) == 40
    assert reward_fee_cents(1, 1) == 1  # at least a cent
    assert reward_fee_cents(53, 1) == 11  # 10.6 cents rounds half up
    assert bonus_fee_cents(250) == 50


def test_amounts_round_trip_as_mturk_currency_strings() -> None:
    assert parse_cents("12", "x") == 1200
    assert parse_cents("0.5", "x") == 50
    assert format_cents(parse_cents("10000.00", "x")) == "10000.00"


def test_account_starts_with_ten_thousand_dollars(mturk: Any) -> None:
    reply = mturk.get_account_balance()
    assert (reply["AvailableBalance"], reply["OnHoldBalance"]) == ("10000.00", "0.00")


def test_creating_a_hit_holds_reward_and_fee_for_every_assignment(server: SandboxServer, mturk: Any) -> None:
    create_hit(mturk, server.external_question(), Reward="1.00", MaxAssignments=3)
    assert balance(mturk) == "9996.40"

    create_hit(mturk, server.external_question(), Reward="1.00", MaxAssignments=10)
    assert balance(mturk) == "9982.40"
    assert mturk.get_account_balance()["OnHoldBalance"] == "17.60"


def test_rejected_work_and_unused_slots_of_an_expired_hit_are_refunded(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), Reward="1.00", MaxAssignments=3)
    approved = server.sandbox.accept("AWORKER1", hit["HITId"])
    rejected = server.sandbox.accept("AWORKER2", hit["HITId"])
    server.sandbox.submit(approved.assignment_id, {"a": "1"})
    server.sandbox.submit(rejected.assignment_id, {"a": "2"})

    mturk.approve_assignment(AssignmentId=approved.assignment_id)
    mturk.reject_assignment(AssignmentId=rejected.assignment_id, RequesterFeedback="Empty answer")
    after_review = balance(mturk)
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1))

    assert after_review == "9997.60"  # one approved + one still open slot
    assert balance(mturk) == "9998.80"  # only the approved assignment is paid
    assert mturk.get_account_balance()["OnHoldBalance"] == "0.00"


def test_overriding_a_rejection_pays_the_assignment(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), Reward="2.00")
    assignment = server.sandbox.accept("AWORKER1", hit["HITId"])
    server.sandbox.submit(assignment.assignment_id, {"a": "1"})
    mturk.reject_assignment(AssignmentId=assignment.assignment_id, RequesterFeedback="Sorry")
    mturk.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1))
    refunded = balance(mturk)
    with pytest.raises(mturk.exceptions.RequestError, match="status of: Submitted"):
        mturk.approve_assignment(AssignmentId=assignment.assignment_id)

    mturk.approve_assignment(AssignmentId=assignment.assignment_id, OverrideRejection=True)

    got = mturk.get_assignment(AssignmentId=assignment.assignment_id)["Assignment"]
    assert refunded == "10000.00"
    assert balance(mturk) == "9997.60"
    assert got["AssignmentStatus"] == "Approved"


def test_bonus_costs_amount_plus_20_percent_and_is_paid_once_per_token(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), Reward="1.00")
    assignment = server.sandbox.accept("AWORKER1", hit["HITId"])
    server.sandbox.submit(assignment.assignment_id, {"a": "1"})
    mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    bonus: dict[str, Any] = {
        "WorkerId": "AWORKER1",
        "AssignmentId": assignment.assignment_id,
        "BonusAmount": "2.50",
        "Reason": "Great conversation",
        "UniqueRequestToken": "bonus-1",
    }

    mturk.send_bonus(**bonus)
    with pytest.raises(mturk.exceptions.RequestError, match="has already been processed"):
        mturk.send_bonus(**bonus)

    payments = mturk.list_bonus_payments(AssignmentId=assignment.assignment_id)["BonusPayments"]
    assert balance(mturk) == f"{10000 - 1.20 - 3.00:.2f}"
    assert [(p["WorkerId"], p["BonusAmount"], p["Reason"]) for p in payments] == [
        ("AWORKER1", "2.50", "Great conversation")
    ]
    assert mturk.list_bonus_payments(HITId=hit["HITId"])["NumResults"] == 1


def test_bonus_must_go_to_the_worker_of_the_assignment(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question())
    assignment = server.sandbox.accept("AWORKER1", hit["HITId"])
    server.sandbox.submit(assignment.assignment_id, {"a": "1"})

    with pytest.raises(mturk.exceptions.RequestError, match="not worked by AOTHER"):
        mturk.send_bonus(WorkerId="AOTHER", AssignmentId=assignment.assignment_id, BonusAmount="1.00", Reason="x")


def test_a_hit_that_costs_more_than_the_balance_is_refused(server: SandboxServer, mturk: Any) -> None:
    server.sandbox.set_funds("5.00")

    with pytest.raises(mturk.exceptions.RequestError, match="insufficient funds"):
        create_hit(mturk, server.external_question(), Reward="1.00", MaxAssignments=5)

    assert mturk.list_hits()["HITs"] == []
    assert balance(mturk) == "5.00"
