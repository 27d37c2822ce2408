"""Who may act as whom. MTurk cannot confirm an assignment when its page joins, so anyone may claim any
(worker id, assignment id) pair: a claim nobody has shown to be real must not block the real worker, and a
second claimant of an assignment gets nothing of the first's (docs/protocol.md, "Claims")."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_RUNS, make_settings
from tests.support.client import Crowd, JoinRefused
from tests.support.server import LiveServer, serve


@pytest.fixture
def claims(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    runs = {**TEST_RUNS, "short-three": "tests.support.tasks:chat_short_three"}
    with serve(make_settings(db_url, tmp_path, runs)) as server:
        yield server


async def _claim(live: LiveServer, run_id: str, worker_id: str, assignment_id: str) -> httpx.Response:
    """A bare join, as anyone who knows (or makes up) the pair can send."""
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as http:
        return await http.post(f"/task/{run_id}/join", json={"assignment_id": assignment_id, "worker_id": worker_id})


async def test_a_second_claimant_of_an_assignment_gets_no_token_and_the_page_stays(claims: LiveServer) -> None:
    crowd = Crowd(claims.base)
    try:
        owner = await crowd.start("chat", "W-owner")
        await owner.wait_state("waiting")
        reply = await _claim(claims, "chat", "W-owner", owner.assignment_id)
        assert reply.status_code == 409, reply.text
        error = reply.json()["error"]
        assert error["code"] == "assignment_in_use" and "token" not in reply.json()
        assert "Continue" in error["message"]
        await owner.send({"type": "ping"})
        await owner.wait_frame(lambda f: f["type"] == "pong")  # the owner's page is still the live one
        assert owner.closed_code is None
    finally:
        await crowd.close()


async def test_the_page_that_joined_resumes_its_assignment_with_its_key(claims: LiveServer) -> None:
    crowd = Crowd(claims.base)
    try:
        first = await crowd.start("chat", "W-tabs")
        await first.wait_state("waiting")
        reloaded = crowd.worker("chat", "W-tabs", first.assignment_id)
        reloaded.resume_key = first.resume_key  # what the page keeps in its storage
        await reloaded.join()
        assert reloaded.agent_id == first.agent_id
        assert (await reloaded.connect())["type"] == "welcome"
        assert await first.wait_closed() == 4409  # the newer page of the same browser takes over
    finally:
        await crowd.close()


async def test_made_up_assignments_under_a_workers_id_do_not_block_their_join(claims: LiveServer) -> None:
    for i in range(3):
        assert (await _claim(claims, "chat", "W-victim", f"A-made-up-{i}")).status_code in (200, 409)
    crowd = Crowd(claims.base)
    try:
        victim = await crowd.start("chat", "W-victim")
        await victim.wait_state("waiting")
    finally:
        await crowd.close()


async def test_made_up_assignments_that_ran_out_do_not_use_up_the_workers_total(claims: LiveServer) -> None:
    crowd = Crowd(claims.base)
    try:
        for i in range(3):  # each made-up claim is worked as far as the waiting room, then runs out there
            fake = crowd.worker("short-three", "W-victim", f"A-made-up-{i}")
            await fake.start()
            await fake.wait_state("waiting_expired")
        victim = crowd.worker("short-three", "W-victim")
        try:
            await victim.start()
        except JoinRefused as refused:
            pytest.fail(f"the real worker was refused: {refused.code}")
        await victim.wait_state("waiting")
    finally:
        await crowd.close()


async def test_one_worker_opening_many_assignments_at_once_is_taken_through_one(claims: LiveServer) -> None:
    crowd = Crowd(claims.base)
    try:
        pages = [crowd.worker("chat", "W-many") for _ in range(5)]
        joined = await asyncio.gather(*(p.join() for p in pages), return_exceptions=True)
        admitted = [p for p, j in zip(pages, joined, strict=True) if not isinstance(j, BaseException)]
        await asyncio.gather(*(p.connect() for p in admitted))
        outcomes = await asyncio.gather(*(
            p.wait_frame(lambda f: f.get("state") == "waiting" or f.get("code") == "too_many_concurrent")
            for p in admitted
        ))
        assert sum(1 for f in outcomes if f.get("state") == "waiting") == 1
        refused = [p for p, f in zip(admitted, outcomes, strict=True) if f.get("code") == "too_many_concurrent"]
        assert len(refused) == len(admitted) - 1
        assert all([await p.wait_closed() == 4403 for p in refused])
    finally:
        await crowd.close()
