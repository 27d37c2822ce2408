"""The built-in MTurk sandbox through any instance: two real server processes on one data directory, the first
holding the sandbox; boto3 and the worker site used through the second get the first's answers, as given."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from server.sandbox.worker_sessions import COOKIE
from server.store import Store
from server.store.leases import LeaseStore
from tests.hits.harness import mturk
from tests.sandbox.conftest import EXTERNAL_QUESTION
from tests.sandbox.helpers import accept_as, create_hit, external_submit_url, turk_submit_to
from tests.support.process import ServerProcess
from tests.support.server import free_port

ENV = {"PARLEY_LEASE_S": "3"}


@pytest.fixture
def pair(db_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    holder = ServerProcess(port=free_port(), data_dir=tmp_path, db_url=db_url, runs={}, **ENV)
    other = ServerProcess(port=free_port(), data_dir=tmp_path, db_url=db_url, runs={}, **ENV)
    try:
        holder.start(timeout=60)  # first on the data directory: it takes the sandbox's state file
        other.start(timeout=60)
        yield holder, other
    finally:
        other.stop()
        holder.stop()


def _sandbox_flags(db_url: str) -> dict[str, bool]:
    """instance url -> whether its row says it serves the sandbox, for the live instances."""

    async def read() -> dict[str, bool]:
        store = Store(db_url)
        await store.open()
        try:
            return {row.url: row.sandbox for row in await LeaseStore(store).live_instances(time.time())}
        finally:
            await store.close()

    return asyncio.run(read())


def test_boto3_and_the_worker_site_work_through_an_instance_that_does_not_hold_the_sandbox(
    pair: tuple[ServerProcess, ServerProcess], db_url: str
) -> None:
    holder, other = pair
    assert _sandbox_flags(db_url) == {holder.base: True, other.base: False}
    requester = mturk(f"{other.base}/sandbox/mturk")

    # The requester API: calls through the other instance change the holder's state, and its errors come
    # back as MTurk shapes them.
    hit = create_hit(requester, EXTERNAL_QUESTION.format(url=f"{other.base}/task/proxied"))
    assert mturk(f"{holder.base}/sandbox/mturk").get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Assignable"
    with pytest.raises(ClientError) as refused:
        requester.get_hit(HITId="NO_SUCH_HIT")
    assert refused.value.response["Error"]["Code"] == "RequestError"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    with httpx.Client(base_url=other.base, timeout=20) as site, httpx.Client(base_url=holder.base, timeout=20) as own:
        # The worker site's page: the holder's headers, each once.
        page, direct = site.get("/sandbox/worker"), own.get("/sandbox/worker")
        assert page.status_code == 200 and page.text == direct.text
        assert page.headers.get_list("content-security-policy") == direct.headers.get_list("content-security-policy")
        assert page.headers.get_list("x-content-type-options") == ["nosniff"]

        # A worker picks an id (a cookie set through the other instance) and accepts; the links the sandbox
        # builds name the address the worker used, not the holder's.
        accepted = accept_as(site, "APROXYWORKER1", hit["HITId"])
        assert accepted.status_code == 200, accepted.text
        assert site.cookies.get(COOKIE)
        assert turk_submit_to(accepted.json()["url"]).startswith(f"{other.base}/sandbox/submit/")
        # A refusal passes through as the holder gives it: a browser without the worker's cookie cannot return
        # the worker's HIT.
        theirs = {"assignment_id": accepted.json()["assignment_id"]}
        with httpx.Client(timeout=20) as stranger:
            taken = stranger.post(f"{other.base}/sandbox/worker/return", json=theirs)
            taken_directly = stranger.post(f"{holder.base}/sandbox/worker/return", json=theirs)
        assert taken.status_code == taken_directly.status_code >= 400
        assert taken.json()["error"]["code"] == taken_directly.json()["error"]["code"]

        # MTurk's form post, through the other instance, submits the assignment on the holder.
        submitted = site.post(external_submit_url(accepted.json()["url"]),
                              data={"assignmentId": accepted.json()["assignment_id"], "colour": "green"})
        assert submitted.status_code == 200, submitted.text
    assignments = mturk(f"{holder.base}/sandbox/mturk").list_assignments_for_hit(HITId=hit["HITId"])["Assignments"]
    assert [(a["WorkerId"], a["AssignmentStatus"]) for a in assignments] == [("APROXYWORKER1", "Submitted")]
    assert "green" in assignments[0]["Answer"]

    # The holder dies: the other instance takes the sandbox's state file over and serves it itself.
    holder.kill()
    assert requester.get_hit(HITId=hit["HITId"])["HIT"]["HITId"] == hit["HITId"]
    assert requester.list_assignments_for_hit(HITId=hit["HITId"])["Assignments"][0]["AssignmentStatus"] == "Submitted"


def test_a_forwarded_request_is_not_forwarded_again(pair: tuple[ServerProcess, ServerProcess]) -> None:
    _holder, other = pair
    reply = httpx.get(f"{other.base}/sandbox/worker", headers={"x-parley-forwarded-by": "elsewhere:1:abc"}, timeout=20)
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "unavailable" and "Retry" in reply.json()["error"]["message"]
