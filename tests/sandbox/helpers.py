"""Small builders shared by the sandbox tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

HTML_QUESTION = """<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd">
<HTMLContent><![CDATA[<!DOCTYPE html><html><head><title>HTML task</title></head><body>
<form name="mturk_form" method="post" id="mturk_form" action="https://www.mturk.com/mturk/externalSubmit">
<input name="colour" value="blue"><input type="submit" id="submitButton" value="Submit"></form>
</body></html>]]></HTMLContent><FrameHeight>450</FrameHeight></HTMLQuestion>"""


def hit_params(question: str, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "Title": "Chat about a picture",
        "Description": "Talk with another person for five minutes.",
        "Keywords": "chat, dialogue",
        "Reward": "1.00",
        "AssignmentDurationInSeconds": 600,
        "LifetimeInSeconds": 3600,
        "AutoApprovalDelayInSeconds": 3600,
        "MaxAssignments": 1,
        "Question": question,
    }
    params.update(overrides)
    return params


def create_hit(mturk: Any, question: str, **overrides: Any) -> dict[str, Any]:
    hit: dict[str, Any] = mturk.create_hit(**hit_params(question, **overrides))["HIT"]
    return hit


def balance(mturk: Any) -> str:
    available: str = mturk.get_account_balance()["AvailableBalance"]
    return available


# ---- the worker site, as a browser uses it: pick a worker id (a cookie), accept, post to turkSubmitTo --------


def turk_submit_to(work_url: str) -> str:
    """The turkSubmitTo the sandbox gave an assignment's page (it carries the assignment's submit key)."""
    return parse_qs(urlsplit(work_url).query)["turkSubmitTo"][0]


def external_submit_url(work_url: str) -> str:
    return turk_submit_to(work_url) + "/mturk/externalSubmit"


def accept_as(http: httpx.Client, worker_id: str, hit_id: str) -> httpx.Response:
    """Pick `worker_id` for this client (its cookie jar is the browser), then accept the HIT."""
    picked = http.post("/sandbox/worker/session", json={"worker_id": worker_id})
    if picked.status_code != 200:
        return picked
    return http.post("/sandbox/worker/accept", json={"worker_id": worker_id, "hit_id": hit_id})


async def accept_as_async(http: httpx.AsyncClient, worker_id: str, hit_id: str) -> httpx.Response:
    picked = await http.post("/sandbox/worker/session", json={"worker_id": worker_id})
    if picked.status_code != 200:
        return picked
    return await http.post("/sandbox/worker/accept", json={"worker_id": worker_id, "hit_id": hit_id})
