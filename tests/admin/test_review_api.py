"""Review through the JSON API on a real server: transcripts, approve, reject with a reason, block, bulk approve,
a form run's answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.admin.conftest import finish_qa, kept_form_answers
from tests.support.client import Crowd, JoinRefused
from tests.support.server import LiveServer


async def _conversation_of(admin: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    snapshot = (await admin.get("/admin/api/runs/qa")).json()
    for conv in snapshot["recent"]:
        transcript = (await admin.get(f"/admin/api/conversations/{conv['id']}")).json()
        if any(p["agent_id"] == agent_id for p in transcript["participants"]):
            return dict(transcript)
    raise AssertionError(f"no conversation has agent {agent_id}")


async def test_a_transcript_shows_messages_annotations_world_data_and_workers(
    admin: httpx.AsyncClient, admin_crowd: Crowd
) -> None:
    worker = await finish_qa(admin_crowd, "W-transcript")
    transcript = await _conversation_of(admin, worker.agent_id)
    texts = [m["text"] for m in transcript["messages"]]
    assert "Question from W-transcript?" in texts and "Answer from W-transcript." in texts
    assert transcript["world_data"]["answer"] == "Answer from W-transcript."
    (human,) = [p for p in transcript["participants"] if p["kind"] == "human"]
    assert human["worker_id"] == "W-transcript" and human["state"] == "submitted"


async def test_approve_moves_the_worker_to_approved_and_is_recorded_once(
    admin: httpx.AsyncClient, admin_crowd: Crowd
) -> None:
    worker = await finish_qa(admin_crowd, "W-approve")
    reply = await admin.post(f"/admin/api/agents/{worker.agent_id}/approve", json={"feedback": "Thanks!"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["via"] == "parley" and reply.json()["state"] == "approved"
    await worker.wait_state("approved")
    again = (await admin.post(f"/admin/api/agents/{worker.agent_id}/approve", json={})).json()
    assert again["duplicate"] is True
    transcript = await _conversation_of(admin, worker.agent_id)
    (human,) = [p for p in transcript["participants"] if p["kind"] == "human"]
    assert [(r["action"], r["reason"]) for r in human["reviews"]] == [("approve", "Thanks!")]


async def test_reject_needs_a_reason_and_refuses_unsubmitted_work(
    admin: httpx.AsyncClient, admin_crowd: Crowd
) -> None:
    unsubmitted = await finish_qa(admin_crowd, "W-early", submit=False)
    early = await admin.post(f"/admin/api/agents/{unsubmitted.agent_id}/reject", json={"reason": "too early"})
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_reviewable"

    worker = await finish_qa(admin_crowd, "W-reject")
    no_reason = await admin.post(f"/admin/api/agents/{worker.agent_id}/reject", json={"reason": "  "})
    assert no_reason.status_code == 422 and no_reason.json()["error"]["code"] == "reason_required"
    assert (await admin.get("/admin/api/runs/qa")).json()["assignments"]["rejected"] == 0
    rejected = await admin.post(f"/admin/api/agents/{worker.agent_id}/reject", json={"reason": "Off topic"})
    assert rejected.json()["state"] == "rejected"
    await worker.wait_state("rejected")


async def test_a_blocked_worker_is_refused_by_the_next_join(admin: httpx.AsyncClient, admin_crowd: Crowd) -> None:
    no_reason = await admin.post("/admin/api/workers/W-block/block", json={"reason": ""})
    assert no_reason.status_code == 422
    assert (await admin.post("/admin/api/workers/W-block/block", json={"reason": "spam"})).status_code == 200
    try:
        await admin_crowd.worker("qa", "W-block").join()
    except JoinRefused as refused:
        assert refused.code == "blocked" and "spam" in refused.message
    else:
        raise AssertionError("a blocked worker joined")


async def test_a_bonus_on_work_not_on_mturk_is_refused_without_a_record(
    admin: httpx.AsyncClient, admin_crowd: Crowd
) -> None:
    worker = await finish_qa(admin_crowd, "W-bonus")
    reply = await admin.post(
        f"/admin/api/agents/{worker.agent_id}/bonus", json={"amount": "0.50", "reason": "Great", "key": "k1"}
    )
    assert reply.status_code == 409 and reply.json()["error"]["code"] == "not_on_mturk"
    bad = await admin.post(f"/admin/api/agents/{worker.agent_id}/bonus", json={"amount": "lots", "reason": "x"})
    assert bad.status_code == 422


async def test_bulk_approve_approves_every_submitted_assignment_of_the_run(
    admin: httpx.AsyncClient, admin_crowd: Crowd
) -> None:
    workers = [await finish_qa(admin_crowd, f"W-bulk-{i}") for i in range(3)]
    reply = (await admin.post("/admin/api/runs/qa/approve", json={})).json()
    assert sorted(reply["approved"]) == sorted(w.agent_id for w in workers) and reply["failed"] == {}
    assert (await admin.get("/admin/api/runs/qa")).json()["assignments"] == {
        "submitted": 0, "approved": 3, "rejected": 0,
    }


async def test_unknown_ids_answer_404_json(admin: httpx.AsyncClient) -> None:
    for path in ("/admin/api/runs/nope", "/admin/api/conversations/nope"):
        reply = await admin.get(path)
        assert reply.status_code == 404 and reply.json()["error"]["code"].startswith("unknown_")
    assert (await admin.post("/admin/api/agents/nope/approve", json={})).status_code == 404


async def test_a_form_runs_answers_show_with_agreement_over_kept_readable_work(
    admin_server: LiveServer, admin: httpx.AsyncClient
) -> None:
    await kept_form_answers(admin_server, "formrun")
    reply = await admin.get("/admin/api/runs/formrun/form")
    assert reply.status_code == 200, reply.text
    form = reply.json()
    assert (form["form_task"], form["answers"], form["items"], form["workers"], form["unreadable"]) == (
        True, 8, 3, 3, 1
    )
    assert form["by_status"] == {"Approved": 1, "Submitted": 6, "Rejected": 1}
    [emotion] = form["agreement"]
    assert (emotion["field"], emotion["items"], emotion["answers"]) == ("emotion", 2, 6)
    assert emotion["percent_agreement"] == pytest.approx((1 + 1 / 3) / 2)
    assert emotion["fleiss_kappa"] == pytest.approx(5 / 11)  # see FORM_WORK
    assert emotion["majority"] == {"t1": "happy", "t2": "angry"}
    assert form["latest"][0]["assignment_id"] == "A-t3-AFORM2"  # newest first
    assert form["latest"][0]["error"] == "no emotion field in the Answer"
    assert len(form["latest"]) == 8

    chat = (await admin.get("/admin/api/runs/qa/form")).json()
    assert (chat["form_task"], chat["answers"], chat["agreement"], chat["latest"]) == (False, 0, [], [])
    missing = await admin.get("/admin/api/runs/nope/form")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_run"
