"""The built-in Prolific's researcher API, driven over HTTP with httpx as Parley's provider drives it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.prolific.conftest import ProlificServer
from tests.prolific.helpers import hand_in, take_place

REASON = "The conversation shows no attempt at the task: every message was a single letter. " * 2


def published(api: httpx.Client, prolific: ProlificServer, **changes: Any) -> dict[str, Any]:
    study = api.post("/studies/", json=prolific.study_body(**changes))
    assert study.status_code == 201, study.text
    assert study.json()["status"] == "UNPUBLISHED"
    moved = api.post(f"/studies/{study.json()['id']}/transition/", json={"action": "PUBLISH"})
    assert moved.status_code == 200, moved.text
    return dict(moved.json())


def test_a_request_without_a_token_is_refused_in_prolifics_error_shape(prolific: ProlificServer) -> None:
    reply = httpx.get(prolific.api + "/studies/")
    assert reply.status_code == 401
    error = reply.json()["error"]
    assert error["status"] == 401 and error["title"] == "Not authenticated" and "Token" in error["detail"]


def test_a_study_is_created_as_a_draft_and_published_by_transition(
    api: httpx.Client, prolific: ProlificServer
) -> None:
    study = published(api, prolific)
    assert study["status"] == "ACTIVE" and study["total_available_places"] == 2 and study["reward"] == 150
    assert [s["id"] for s in api.get("/studies/").json()["results"]] == [study["id"]]
    assert api.get(f"/studies/{study['id']}/").json()["places_taken"] == 0


def test_a_study_url_without_the_participant_placeholder_is_refused_field_by_field(
    api: httpx.Client, prolific: ProlificServer
) -> None:
    reply = api.post("/studies/", json=prolific.study_body(external_study_url="https://example.org/x", reward=1.5))
    assert reply.status_code == 400
    detail = reply.json()["error"]["detail"]
    assert "external_study_url" in detail or "reward" in detail
    assert api.get("/studies/").json()["results"] == []


def test_transitions_follow_the_study_lifecycle_and_refuse_the_rest(
    api: httpx.Client, prolific: ProlificServer
) -> None:
    study = published(api, prolific)
    move = lambda action: api.post(f"/studies/{study['id']}/transition/", json={"action": action})  # noqa: E731
    assert move("START").status_code == 400  # already active
    assert move("PAUSE").json()["status"] == "PAUSED"
    assert move("START").json()["status"] == "ACTIVE"
    assert move("STOP").json()["status"] == "COMPLETED"
    refused = move("PUBLISH")
    assert refused.status_code == 400 and "COMPLETED" in refused.json()["error"]["detail"]
    assert move("LAUNCH").status_code == 400


def test_a_participant_takes_a_place_and_lands_on_the_study_url_with_prolifics_parameters(
    api: httpx.Client, site: httpx.Client, prolific: ProlificServer
) -> None:
    study = published(api, prolific)
    params = take_place(site, study["id"], "PID-A")
    submissions = api.get(f"/studies/{study['id']}/submissions/").json()["results"]
    assert len(submissions) == 1 and submissions[0]["status"] == "ACTIVE"
    assert params == {"PROLIFIC_PID": "PID-A", "STUDY_ID": study["id"], "SESSION_ID": submissions[0]["id"]}
    assert hand_in(site, "PID-A", "DONE1").status_code == 200
    got = api.get(f"/submissions/{submissions[0]['id']}/").json()
    assert got["status"] == "AWAITING REVIEW" and got["study_code"] == "DONE1"


def test_places_run_out_and_a_returned_place_opens_again(
    api: httpx.Client, site: httpx.Client, prolific: ProlificServer
) -> None:
    study = published(api, prolific, total_available_places=1)
    session = take_place(site, study["id"], "PID-A")["SESSION_ID"]
    full = site.post(f"/sandbox/prolific/participant/studies/{study['id']}/start", data={"pid": "PID-B"})
    assert full.status_code == 409 and "All places" in full.text
    assert site.post(f"/sandbox/prolific/participant/submissions/{session}/return").status_code == 200
    assert take_place(site, study["id"], "PID-B")["PROLIFIC_PID"] == "PID-B"
    listed = api.get(f"/studies/{study['id']}/submissions/").json()["results"]
    statuses = {s["participant_id"]: s["status"] for s in listed}
    assert statuses == {"PID-A": "RETURNED", "PID-B": "ACTIVE"}


def test_an_active_submission_times_out_after_the_maximum_allowed_time(
    api: httpx.Client, site: httpx.Client, prolific: ProlificServer
) -> None:
    study = published(api, prolific)
    session = take_place(site, study["id"], "PID-A")["SESSION_ID"]
    prolific.clock.advance(30 * 60 + 1)
    assert api.get(f"/submissions/{session}/").json()["status"] == "TIMED-OUT"
    assert hand_in(site, "PID-A", "DONE1").status_code == 409


def test_approve_and_reject_by_transition_with_a_rejection_category(
    api: httpx.Client, site: httpx.Client, prolific: ProlificServer
) -> None:
    study = published(api, prolific)
    first = take_place(site, study["id"], "PID-A")["SESSION_ID"]
    second = take_place(site, study["id"], "PID-B")["SESSION_ID"]
    hand_in(site, "PID-A", "DONE1")
    hand_in(site, "PID-B", "LEFT1")
    approve = {"action": "APPROVE"}
    assert api.post(f"/submissions/{first}/transition/", json=approve).json()["status"] == "APPROVED"
    assert api.post(f"/submissions/{first}/transition/", json=approve).json()["status"] == "APPROVED"  # idempotent
    short = api.post(f"/submissions/{second}/transition/", json={"action": "REJECT", "message": "no",
                                                                  "rejection_category": "LOW_EFFORT"})
    assert short.status_code == 400 and "message" in short.json()["error"]["detail"]
    uncategorised = api.post(f"/submissions/{second}/transition/", json={"action": "REJECT", "message": REASON,
                                                                         "rejection_category": "BORING"})
    assert uncategorised.status_code == 400 and "rejection_category" in uncategorised.json()["error"]["detail"]
    rejected = api.post(f"/submissions/{second}/transition/", json={"action": "REJECT", "message": REASON,
                                                                    "rejection_category": "LOW_EFFORT"})
    assert rejected.json()["status"] == "REJECTED"
    assert api.post(f"/submissions/{second}/transition/", json=approve).status_code == 400


def test_a_bulk_bonus_pays_each_time_pay_is_called_as_prolific_warns(
    api: httpx.Client, site: httpx.Client, prolific: ProlificServer
) -> None:
    study = published(api, prolific)
    session = take_place(site, study["id"], "PID-A")["SESSION_ID"]
    hand_in(site, "PID-A", "DONE1")
    before = api.get("/workspaces/").json()["results"][0]["id"]
    balance_before = api.get(f"/workspaces/{before}/balance/").json()
    bonus = api.post("/submissions/bonus-payments/", json={"study_id": study["id"], "csv_bonuses": f"{session},1.00\n"})
    assert bonus.status_code == 201, bonus.text
    assert bonus.json()["amount"] == 100 and bonus.json()["fees"] == 43 and bonus.json()["vat"] == 9
    assert api.get(f"/submissions/{session}/").json()["bonus_payments"] == []  # created is not paid
    assert api.post(f"/bulk-bonus-payments/{bonus.json()['id']}/pay/").status_code == 202
    assert api.get(f"/submissions/{session}/").json()["bonus_payments"] == [100]
    balance_after = api.get(f"/workspaces/{before}/balance/").json()
    assert balance_before["total_balance"] - balance_after["total_balance"] == 152
    assert balance_after["balance_breakdown"]["bonuses"] == 100


def test_a_bonus_for_someone_outside_the_study_is_refused(api: httpx.Client, prolific: ProlificServer) -> None:
    study = published(api, prolific)
    reply = api.post("/submissions/bonus-payments/", json={"study_id": study["id"], "csv_bonuses": "NOBODY,1.00"})
    assert reply.status_code == 400 and "did not take part" in str(reply.json()["error"]["detail"])


def test_publishing_holds_rewards_fees_and_vat_and_refuses_what_the_balance_cannot_cover(
    api: httpx.Client, prolific: ProlificServer
) -> None:
    prolific.sandbox.set_funds(800)
    study = published(api, prolific, total_available_places=2, reward=150)  # 300 + 128 fee + 26 VAT = 454
    balance = api.get("/workspaces/parley-builtin-workspace/balance/").json()
    assert balance["total_balance"] == 800 and balance["available_balance"] == 800 - 454
    more = api.patch(f"/studies/{study['id']}/", json={"total_available_places": 4})  # 454 more > 346 left
    assert more.status_code == 402 and more.json()["error"]["title"] == "Insufficient funds"
    assert api.get(f"/studies/{study['id']}/").json()["total_available_places"] == 2
    one_more = api.patch(f"/studies/{study['id']}/", json={"total_available_places": 3})  # 227 <= 346
    assert one_more.json()["total_available_places"] == 3
    fewer = api.patch(f"/studies/{study['id']}/", json={"total_available_places": 1})
    assert fewer.status_code == 400


def test_a_participant_group_blocks_its_members_from_a_study(
    api: httpx.Client, site: httpx.Client, prolific: ProlificServer
) -> None:
    group = api.post("/participant-groups/", json={"name": "parley-blocked"}).json()
    api.post(f"/participant-groups/{group['id']}/participants/", json={"participant_ids": ["PID-BAD"]})
    blocklist = [{"filter_id": "participant_group_blocklist", "selected_values": [group["id"]]}]
    study = published(api, prolific, filters=blocklist)
    refused = site.post(f"/sandbox/prolific/participant/studies/{study['id']}/start", data={"pid": "PID-BAD"})
    assert refused.status_code == 409 and "not eligible" in refused.text
    api.request("DELETE", f"/participant-groups/{group['id']}/participants/", json={"participant_ids": ["PID-BAD"]})
    assert take_place(site, study["id"], "PID-BAD")["PROLIFIC_PID"] == "PID-BAD"


def test_the_state_survives_a_restart_of_the_emulator(
    api: httpx.Client, site: httpx.Client, prolific: ProlificServer
) -> None:
    from server.prolific_sandbox.core import load

    study = published(api, prolific)
    take_place(site, study["id"], "PID-A")
    state = load(prolific.state_path)
    assert state.studies[study["id"]].status.value == "ACTIVE"
    assert [s.participant_id for s in state.submissions.values()] == ["PID-A"]
