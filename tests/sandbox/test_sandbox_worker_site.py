"""The worker site's JSON actions, externalSubmit and HTMLQuestion pages, over real HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from server.sandbox.question import ANSWER_NAMESPACE
from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import HTML_QUESTION, accept_as, create_hit, external_submit_url


def accept(http: httpx.Client, worker_id: str, hit_id: str) -> httpx.Response:
    return accept_as(http, worker_id, hit_id)


def hits_of(http: httpx.Client, worker_id: str) -> list[dict[str, Any]]:
    """The HITs the worker site lists for `worker_id`, picked by this client."""
    assert http.post("/sandbox/worker/session", json={"worker_id": worker_id}).status_code == 200
    hits: list[dict[str, Any]] = http.get("/sandbox/worker/hits", params={"worker_id": worker_id}).json()["hits"]
    return hits


def refusal_code(response: httpx.Response) -> str:
    assert 400 <= response.status_code < 500, response.text
    code: str = response.json()["error"]["code"]
    return code


def answers_of(mturk: Any, hit_id: str) -> list[tuple[str, str]]:
    (assignment,) = mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]
    root = ET.fromstring(assignment["Answer"])
    ns = {"a": ANSWER_NAMESPACE}
    return [
        (
            answer.findtext("a:QuestionIdentifier", namespaces=ns) or "",
            answer.findtext("a:FreeText", namespaces=ns) or "",
        )
        for answer in root.findall("a:Answer", ns)
    ]


def test_accept_gives_the_external_url_with_mturks_four_parameters(
    server: SandboxServer, mturk: Any, http: httpx.Client
) -> None:
    hit = create_hit(mturk, server.external_question())

    reply = accept(http, "AWORKER1", hit["HITId"])

    assert reply.status_code == 200
    url = urlsplit(reply.json()["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == server.task_url
    key = server.sandbox.state.assignments[reply.json()["assignment_id"]].submit_key  # only this page gets it
    assert parse_qs(url.query) == {
        "assignmentId": [reply.json()["assignment_id"]],
        "hitId": [hit["HITId"]],
        "workerId": ["AWORKER1"],
        "turkSubmitTo": [f"{server.base_url}/sandbox/submit/{key}"],
    }
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Unassignable"


def test_external_submit_form_becomes_answer_xml(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    hit = create_hit(mturk, server.external_question())
    accepted = accept(http, "AWORKER1", hit["HITId"]).json()
    assignment_id = accepted["assignment_id"]

    page = http.post(
        external_submit_url(accepted["url"]),
        data={"assignmentId": assignment_id, "answer": "<b>blue</b> & green", "comment": ""},
    )

    assert page.status_code == 200
    assert 'data-status="submitted"' in page.text or "data-status='submitted'" in page.text
    assert answers_of(mturk, hit["HITId"]) == [("answer", "<b>blue</b> & green"), ("comment", "")]
    got = mturk.get_assignment(AssignmentId=assignment_id)["Assignment"]
    assert got["AssignmentStatus"] == "Submitted"
    assert got["SubmitTime"].timestamp() == server.clock.now
    assert mturk.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"


def test_external_submit_also_accepts_get_and_multipart(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    by_get = create_hit(mturk, server.external_question())
    by_multipart = create_hit(mturk, server.external_question())
    first = accept(http, "AWORKER1", by_get["HITId"]).json()
    second = accept(http, "AWORKER1", by_multipart["HITId"]).json()

    by_query = {"assignmentId": first["assignment_id"], "q": "1"}
    http.get(external_submit_url(first["url"]), params=by_query).raise_for_status()
    http.post(
        external_submit_url(second["url"]),
        data={"assignmentId": second["assignment_id"], "q": "2"},
        files={"upload": ("notes.txt", b"hello", "text/plain")},
    ).raise_for_status()

    assert answers_of(mturk, by_get["HITId"]) == [("q", "1")]
    assert answers_of(mturk, by_multipart["HITId"]) == [("q", "2"), ("upload", "notes.txt")]


def test_submitting_twice_or_a_preview_is_refused(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    hit = create_hit(mturk, server.external_question())
    accepted = accept(http, "AWORKER1", hit["HITId"]).json()
    assignment_id, submit_url = accepted["assignment_id"], external_submit_url(accepted["url"])
    http.post(submit_url, data={"assignmentId": assignment_id, "a": "1"})

    again = http.post(submit_url, data={"assignmentId": assignment_id, "a": "2"})
    preview = http.post(submit_url, data={"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"})
    unknown = http.post(submit_url, data={"assignmentId": "3NOPE"})

    assert again.status_code == 409
    assert preview.status_code == 400
    assert unknown.status_code == 404
    assert answers_of(mturk, hit["HITId"]) == [("a", "1")]


def test_return_frees_the_slot_for_another_worker(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    hit = create_hit(mturk, server.external_question())
    assignment_id = accept(http, "AWORKER1", hit["HITId"]).json()["assignment_id"]
    full = accept(http, "AWORKER2", hit["HITId"])

    returned = http.post("/sandbox/worker/return", json={"assignment_id": assignment_id})
    taken = accept(http, "AWORKER2", hit["HITId"])

    assert refusal_code(full) == "no_assignment_left"
    assert returned.json() == {"assignment_id": assignment_id, "status": "Returned"}
    assert taken.status_code == 200
    assert refusal_code(http.post("/sandbox/worker/return", json={"assignment_id": assignment_id})) == (
        "not_in_progress"
    )
    assert mturk.list_assignments_for_hit(HITId=hit["HITId"])["Assignments"] == []


def test_a_worker_cannot_take_the_same_hit_twice(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    hit = create_hit(mturk, server.external_question(), MaxAssignments=3)
    assignment_id = accept(http, "AWORKER1", hit["HITId"]).json()["assignment_id"]
    working = accept(http, "AWORKER1", hit["HITId"])
    server.sandbox.submit(assignment_id, {"a": "1"})
    done = accept(http, "AWORKER1", hit["HITId"])

    assert refusal_code(working) == "already_working"
    assert refusal_code(done) == "already_submitted"


def test_does_not_exist_requirement_hides_the_hit_and_refuses_accept(
    server: SandboxServer, mturk: Any, http: httpx.Client
) -> None:
    soft_block = mturk.create_qualification_type(
        Name="parley-soft-block", Description="Workers Parley keeps out", QualificationTypeStatus="Active"
    )["QualificationType"]["QualificationTypeId"]
    requirement = {
        "QualificationTypeId": soft_block,
        "Comparator": "DoesNotExist",
        "ActionsGuarded": "DiscoverPreviewAndAccept",
    }
    hit = create_hit(mturk, server.external_question(), QualificationRequirements=[requirement])
    mturk.associate_qualification_with_worker(QualificationTypeId=soft_block, WorkerId="AKEPTOUT", IntegerValue=1)

    hidden = hits_of(http, "AKEPTOUT")
    shown = hits_of(http, "AWELCOME")
    refused = accept(http, "AKEPTOUT", hit["HITId"])

    assert hidden == []
    assert [h["hit_id"] for h in shown] == [hit["HITId"]]
    assert shown[0]["can_accept"] is True
    assert refusal_code(refused) == "not_qualified"
    assert "parley-soft-block" in refused.json()["error"]["message"]
    workers = mturk.list_workers_with_qualification_type(QualificationTypeId=soft_block)["Qualifications"]
    assert [(q["WorkerId"], q["IntegerValue"], q["Status"]) for q in workers] == [("AKEPTOUT", 1, "Granted")]

    mturk.disassociate_qualification_from_worker(QualificationTypeId=soft_block, WorkerId="AKEPTOUT", Reason="ok")
    assert accept(http, "AKEPTOUT", hit["HITId"]).status_code == 200


def test_accept_guard_shows_the_hit_but_refuses_accept(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    score = mturk.create_qualification_type(
        Name="score", Description="Onboarding score", QualificationTypeStatus="Active"
    )["QualificationType"]["QualificationTypeId"]
    requirement = {"QualificationTypeId": score, "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [80]}
    hit = create_hit(mturk, server.external_question(), QualificationRequirements=[requirement])
    mturk.associate_qualification_with_worker(QualificationTypeId=score, WorkerId="ALOW", IntegerValue=50)
    mturk.associate_qualification_with_worker(QualificationTypeId=score, WorkerId="AHIGH", IntegerValue=95)

    (seen,) = hits_of(http, "ALOW")

    assert seen["can_accept"] is False
    assert seen["preview_url"] is not None
    assert seen["refusal"]["code"] == "not_qualified"
    assert refusal_code(accept(http, "ALOW", hit["HITId"])) == "not_qualified"
    assert accept(http, "AHIGH", hit["HITId"]).status_code == 200
    got = mturk.get_qualification_score(QualificationTypeId=score, WorkerId="AHIGH")["Qualification"]
    assert got["IntegerValue"] == 95


def test_locale_requirement_follows_the_worker_locale(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    locale = {
        "QualificationTypeId": "00000000000000000071",
        "Comparator": "In",
        "LocaleValues": [{"Country": "US"}, {"Country": "CA"}],
        "ActionsGuarded": "DiscoverPreviewAndAccept",
    }
    hit = create_hit(mturk, server.external_question(), MaxAssignments=2, QualificationRequirements=[locale])
    server.sandbox.set_worker_locale("AFRANCE", "FR")

    assert accept(http, "AUSA", hit["HITId"]).status_code == 200
    assert refusal_code(accept(http, "AFRANCE", hit["HITId"])) == "not_qualified"
    assert hits_of(http, "AFRANCE") == []
    got = mturk.get_qualification_score(QualificationTypeId="00000000000000000071", WorkerId="AFRANCE")
    assert got["Qualification"]["LocaleValue"] == {"Country": "FR"}


def test_system_qualification_values_are_settable(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    approval = {
        "QualificationTypeId": "000000000000000000L0",
        "Comparator": "GreaterThanOrEqualTo",
        "IntegerValues": [95],
    }
    hit = create_hit(mturk, server.external_question(), QualificationRequirements=[approval])
    server.sandbox.set_system_qualification("ASLOPPY", "000000000000000000L0", 80)

    assert refusal_code(accept(http, "ASLOPPY", hit["HITId"])) == "not_qualified"
    assert accept(http, "ACAREFUL", hit["HITId"]).status_code == 200


def test_blocked_worker_is_refused(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    hit = create_hit(mturk, server.external_question())
    mturk.create_worker_block(WorkerId="ASPAMMER", Reason="Copied answers")

    refused = accept(http, "ASPAMMER", hit["HITId"])
    blocks = mturk.list_worker_blocks()["WorkerBlocks"]
    mturk.delete_worker_block(WorkerId="ASPAMMER", Reason="Appeal accepted")

    assert refusal_code(refused) == "blocked"
    assert refused.status_code == 403
    assert blocks == [{"WorkerId": "ASPAMMER", "Reason": "Copied answers"}]
    assert accept(http, "ASPAMMER", hit["HITId"]).status_code == 200


def test_expired_and_unknown_hits_are_refused(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    hit = create_hit(mturk, server.external_question(), LifetimeInSeconds=60)
    server.clock.advance(61)

    assert refusal_code(accept(http, "AWORKER1", hit["HITId"])) == "hit_expired"
    assert refusal_code(accept(http, "AWORKER1", "3NOSUCHHIT")) == "unknown_hit"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/sandbox/worker/accept", b"not json"),
        ("POST", "/sandbox/worker/accept", b'{"worker_id": 5, "hit_id": "x"}'),
        ("POST", "/sandbox/worker/accept", b'{"worker_id": "lower", "hit_id": "x"}'),
        ("POST", "/sandbox/worker/return", b"[]"),
        ("POST", "/sandbox/worker/return", b'{"assignment_id": "3NOPE"}'),
        ("GET", "/sandbox/worker/hits", b""),
        ("GET", "/sandbox/worker/assignments?worker_id=%00", b""),
        ("GET", "/sandbox/static/.hidden.js", b""),
        ("GET", "/sandbox/static/index.py", b""),
        ("GET", "/sandbox/worker/html/3NOSUCHHIT", b""),
        ("POST", "/sandbox/mturk/externalSubmit", b"\xff\xfe"),
    ],
)
def test_bad_worker_input_gets_a_4xx_never_a_500(
    server: SandboxServer, http: httpx.Client, method: str, path: str, body: bytes
) -> None:
    reply = http.request(method, path, content=body, headers={"Content-Type": "application/json"})

    assert 400 <= reply.status_code < 500, reply.text
    if reply.headers["content-type"].startswith("application/json"):
        assert set(reply.json()["error"]) == {"code", "message"}


def test_html_question_page_posts_to_external_submit_with_the_assignment(
    server: SandboxServer, mturk: Any, http: httpx.Client
) -> None:
    hit = create_hit(mturk, HTML_QUESTION)
    reply = accept(http, "AWORKER1", hit["HITId"]).json()
    url = urlsplit(reply["url"])

    page = http.get(f"{url.path}?{url.query}")
    script = http.get("/sandbox/static/html_question.js")

    assert url.path == f"/sandbox/worker/html/{hit['HITId']}"
    assert parse_qs(url.query)["assignmentId"] == [reply["assignment_id"]]
    assert page.status_code == 200
    assert '<form name="mturk_form"' in page.text
    assert page.text.index("html_question.js") < page.text.index("</body>")
    assert "/mturk/externalSubmit" in script.text


def test_worker_assignments_list_shows_status_and_resume_url(
    server: SandboxServer, mturk: Any, http: httpx.Client
) -> None:
    done = create_hit(mturk, server.external_question(), Title="First")
    working = create_hit(mturk, server.external_question(), Title="Second")
    first = accept(http, "AWORKER1", done["HITId"]).json()["assignment_id"]
    second = accept(http, "AWORKER1", working["HITId"]).json()
    server.sandbox.submit(first, {"a": "1"})
    mturk.reject_assignment(AssignmentId=first, RequesterFeedback="Too short")

    listed = http.get("/sandbox/worker/assignments", params={"worker_id": "AWORKER1"}).json()["assignments"]

    assert [(a["title"], a["status"], a["requester_feedback"]) for a in listed] == [
        ("Second", "Accepted", None),
        ("First", "Rejected", "Too short"),
    ]
    assert listed[0]["work_url"] == second["url"]
    assert listed[1]["work_url"] is None


def test_notified_workers_see_the_message(server: SandboxServer, mturk: Any, http: httpx.Client) -> None:
    hit = create_hit(mturk, server.external_question())
    server.sandbox.accept("AWORKER1", hit["HITId"])

    reply = mturk.notify_workers(Subject="Thanks", MessageText="More HITs tomorrow", WorkerIds=["AWORKER1", "ANEW"])

    assert http.post("/sandbox/worker/session", json={"worker_id": "AWORKER1"}).status_code == 200
    messages = http.get("/sandbox/worker/messages", params={"worker_id": "AWORKER1"}).json()["messages"]
    assert [(m["subject"], m["message_text"]) for m in messages] == [("Thanks", "More HITs tomorrow")]
    assert [f["WorkerId"] for f in reply["NotifyWorkersFailureStatuses"]] == ["ANEW"]


def test_worker_page_and_its_modules_are_served(http: httpx.Client) -> None:
    page = http.get("/sandbox/worker")
    script = http.get("/sandbox/static/worker.js")

    assert page.status_code == 200
    assert "static/worker.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text
