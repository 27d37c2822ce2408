"""Who may act as a worker: the browser that picked the worker id, and only the holder of an assignment may
submit it. Plus the requester API's and the worker page's own robustness."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import create_hit


def pick(http: httpx.Client, worker_id: str) -> httpx.Response:
    return http.post("/sandbox/worker/session", json={"worker_id": worker_id})


def accepted(http: httpx.Client, worker_id: str, hit_id: str) -> dict[str, Any]:
    assert pick(http, worker_id).status_code == 200
    reply = http.post("/sandbox/worker/accept", json={"worker_id": worker_id, "hit_id": hit_id})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def submit_to(work_url: str) -> str:
    """Where the page posts: turkSubmitTo + "/mturk/externalSubmit", as MTurk's pages do."""
    return parse_qs(urlsplit(work_url).query)["turkSubmitTo"][0] + "/mturk/externalSubmit"


def test_someone_else_cannot_submit_an_assignment_by_its_id(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question())
    with server.http() as worker, server.http() as stranger:
        work = accepted(worker, "AWORKER1", hit["HITId"])
        mine = create_hit(mturk, server.external_question())
        other = accepted(stranger, "ASTRANGER", mine["HITId"])

        by_id = stranger.post("/sandbox/mturk/externalSubmit", data={"assignmentId": work["assignment_id"], "a": "x"})
        with_own_key = stranger.post(submit_to(other["url"]), data={"assignmentId": work["assignment_id"], "a": "x"})
        assert by_id.status_code == 403 and with_own_key.status_code == 403
        assert 'data-status="refused"' in by_id.text.replace("'", '"')
        assert server.sandbox.state.assignments[work["assignment_id"]].status.value == "Accepted"

        done = worker.post(submit_to(work["url"]), data={"assignmentId": work["assignment_id"], "a": "mine"})
        assert done.status_code == 200, done.text
    assert server.sandbox.state.assignments[work["assignment_id"]].status.value == "Submitted"


def test_the_submit_address_works_without_the_worker_sites_cookie(server: SandboxServer, mturk: Any) -> None:
    """An HTMLQuestion posts from an opaque origin and an ExternalQuestion may be another site: no cookie."""
    hit = create_hit(mturk, server.external_question())
    with server.http() as worker:
        work = accepted(worker, "AWORKER1", hit["HITId"])
    assert urlsplit(submit_to(work["url"])).path.startswith("/sandbox/")
    with server.http() as page_without_cookie:
        reply = page_without_cookie.post(submit_to(work["url"]), data={"assignmentId": work["assignment_id"]})
    assert reply.status_code == 200, reply.text


def test_a_worker_id_lists_only_for_the_browser_that_picked_it(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question())
    with server.http() as worker, server.http() as stranger:
        work = accepted(worker, "AWORKER1", hit["HITId"])
        mine = worker.get("/sandbox/worker/assignments", params={"worker_id": "AWORKER1"})
        assert [a["assignment_id"] for a in mine.json()["assignments"]] == [work["assignment_id"]]

        anonymous = stranger.get("/sandbox/worker/assignments", params={"worker_id": "AWORKER1"})
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "no_worker_session"
        assert pick(stranger, "ASTRANGER").status_code == 200
        snooping = stranger.get("/sandbox/worker/assignments", params={"worker_id": "AWORKER1"})
        assert snooping.status_code == 403 and snooping.json()["error"]["code"] == "not_your_worker"
        taken = pick(stranger, "AWORKER1")
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "worker_taken"
        assert work["url"] not in snooping.text + taken.text

        returned = stranger.post("/sandbox/worker/return", json={"assignment_id": work["assignment_id"]})
        assert returned.status_code == 403
        impersonated = stranger.post("/sandbox/worker/accept", json={"worker_id": "AWORKER1", "hit_id": hit["HITId"]})
        assert impersonated.status_code == 403
    assert server.sandbox.state.assignments[work["assignment_id"]].status.value == "Accepted"


def test_one_browser_may_work_as_several_worker_ids(server: SandboxServer, mturk: Any) -> None:
    hit = create_hit(mturk, server.external_question(), MaxAssignments=2)
    with server.http() as person:
        first = accepted(person, "AFIRST", hit["HITId"])
        second = accepted(person, "ASECOND", hit["HITId"])
        assert pick(person, "AFIRST").status_code == 200  # back to the first: still this browser's
        listed = person.get("/sandbox/worker/assignments", params={"worker_id": "AFIRST"}).json()["assignments"]
    assert [a["assignment_id"] for a in listed] == [first["assignment_id"]]
    assert first["assignment_id"] != second["assignment_id"]


def test_a_deeply_nested_requester_body_is_a_request_error(server: SandboxServer) -> None:
    with server.http() as http:
        for depth in (100_000, 900):
            body = '{"Title": ' + "[" * depth + "]" * depth + "}"
            reply = http.post(
                "/sandbox/mturk", content=body,
                headers={"X-Amz-Target": "MTurkRequesterServiceV20170117.CreateHIT",
                         "Content-Type": "application/x-amz-json-1.1"},
            )
            assert reply.status_code == 400, (depth, reply.status_code, reply.text[:200])
            assert reply.json()["__type"] == "RequestError"
            assert "nested" in reply.json()["Message"]


def test_the_worker_site_cannot_be_framed_by_another_site(server: SandboxServer) -> None:
    with server.http() as http:
        page = http.get("/sandbox/worker")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-src http: https:" in page.headers["content-security-policy"]  # it still frames task pages
