"""Every provider behind the seam (server/providers/base.py) keeps one contract, tested the same way on MTurk's
built-in sandbox (real boto3) and on the built-in Prolific (real httpx), both databases: publish, hand in,
list, approve, reject, a bonus paid once, the budget with fees, the block list, expire. And the table of
docs/providers.md says what each provider supports, as the providers themselves say it."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.hits import HitManager
from server.hits.provider import MTurkProvider
from server.providers.base import Feature, Provider, RecruitmentSpec, RejectionCategory, SubmissionStatus
from server.providers.mturk import MTurk
from server.providers.prolific import ProlificProvider, codes_for
from server.providers.prolific_api import ProlificApi, Retry
from server.store import Store
from server.store.prolific import ProlificRecords
from tests.prolific.conftest import ProlificServer
from tests.prolific.helpers import hand_in, take_place, try_place
from tests.sandbox.conftest import SandboxServer
from tests.sandbox.helpers import accept_as, external_submit_url

ROOT = Path(__file__).resolve().parents[2]
RUN = "run-1"
REASON = "Every turn of this conversation was copied from the instructions; no answer addressed the question. " * 2
PROVIDERS = {"MTurk": MTurkProvider, "Prolific": ProlificProvider}


@dataclass
class Seat:
    """A provider under test, and what a person does on its emulator."""

    provider: Provider
    spec: RecruitmentSpec
    person: Callable[[str], str]  # a person's id in the provider's own form
    hand_in: Callable[[str, str], str]  # (recruitment id, person) -> the submission id
    may_take: Callable[[str, str], bool]  # whether the person may take a place now
    bonuses_paid: Callable[[str], list[int]]  # what the emulator paid on a submission, in minor units


def _spec(task_url: str) -> RecruitmentSpec:
    return RecruitmentSpec(run_id=RUN, title="Chat with a partner", description="A short conversation.",
                           task_url=task_url, reward_cents=150, estimated_minutes=10, max_minutes=30)


@pytest.fixture(params=list(PROVIDERS))
async def seat(request: pytest.FixtureRequest, store: Store) -> AsyncIterator[Seat]:
    if request.param == "MTurk":
        sandbox: SandboxServer = request.getfixturevalue("server")
        # The HITs' text comes from the run's task.
        await store.ensure_run(RUN, task_module="tests.hits.tasks:chat2", options={})
        boto = sandbox.mturk()
        with sandbox.http() as http:
            yield _mturk_seat(sandbox, store, boto, http)
        boto.close()
    else:
        emulator: ProlificServer = request.getfixturevalue("prolific")
        provider = ProlificProvider(
            ProlificApi(emulator.api, "parley-test", retry=Retry(attempts=3, base_s=0.01, max_s=0.05)),
            ProlificRecords(store, "builtin"), fee_percent=42.8, vat_percent=20.0, is_live=False,
        )
        with httpx.Client(base_url=emulator.base_url, timeout=10) as site:
            def prolific_hand_in(study: str, pid: str) -> str:
                session = take_place(site, study, pid)["SESSION_ID"]
                assert hand_in(site, pid, codes_for(RUN).done).status_code == 200
                return session

            yield Seat(
                provider=provider, spec=_spec(f"{emulator.base_url}/study?run={RUN}"),
                person=lambda name: hashlib.sha256(name.encode()).hexdigest()[:24], hand_in=prolific_hand_in,
                may_take=lambda study, pid: try_place(site, study, pid).status_code == 303,
                bonuses_paid=lambda session: list(emulator.sandbox.run(
                    lambda state, now: state.submissions[session].bonus_payments)),
            )
        await provider.aclose()


def _mturk_seat(sandbox: SandboxServer, store: Store, boto: Any, http: httpx.Client) -> Seat:
    manager = HitManager(mturk=MTurk.connect(sandbox.endpoint, builtin=True), store=store, runs=None,
                         public_url=sandbox.base_url)

    def open_hit() -> str:
        hits = boto.list_hits(MaxResults=100)["HITs"]
        return next(h["HITId"] for h in hits if h["RequesterAnnotation"] == RUN and h["NumberOfAssignmentsAvailable"])

    def mturk_hand_in(_: str, worker: str) -> str:
        accepted = accept_as(http, worker, open_hit())
        assert accepted.status_code == 200, accepted.text
        work = accepted.json()
        submitted = http.post(external_submit_url(work["url"]), data={"assignmentId": work["assignment_id"]})
        assert submitted.status_code == 200, submitted.text
        return str(work["assignment_id"])

    def paid(assignment: str) -> list[int]:
        listed = boto.list_bonus_payments(AssignmentId=assignment)["BonusPayments"]
        return [round(float(b["BonusAmount"]) * 100) for b in listed]

    return Seat(
        provider=MTurkProvider(manager), spec=_spec(f"{sandbox.base_url}/task/{RUN}"),
        person=lambda name: "A" + re.sub(r"[^A-Z0-9]", "", name.upper()) + "CONTRACT",
        hand_in=mturk_hand_in, may_take=lambda _, worker: accept_as(http, worker, open_hit()).status_code == 200,
        bonuses_paid=paid,
    )


async def test_every_provider_publishes_reviews_pays_once_blocks_and_expires(seat: Seat) -> None:
    provider = seat.provider
    assert isinstance(provider, Provider)
    recruitment = await provider.publish(seat.spec, 3)
    assert (recruitment.run_id, recruitment.places, recruitment.open) == (RUN, 3, True)
    assert [r.run_id for r in await provider.recruitments()] == [RUN]

    def work(name: str) -> str:
        return seat.hand_in(recruitment.id, seat.person(name))

    first, second = await asyncio.to_thread(work, "first"), await asyncio.to_thread(work, "second")
    listed = {s.id: (s.worker_id, s.status) for s in await provider.submissions(RUN)}
    assert listed == {first: (seat.person("first"), SubmissionStatus.AWAITING_REVIEW),
                      second: (seat.person("second"), SubmissionStatus.AWAITING_REVIEW)}

    assert (await provider.approve(first)).status == SubmissionStatus.APPROVED
    rejected = await provider.reject(second, REASON, RejectionCategory.FAILED_INSTRUCTIONS)
    assert rejected.status == SubmissionStatus.REJECTED

    paid = [await provider.bonus(first, 50, "a thoughtful conversation", key="thanks") for _ in range(2)]
    assert paid[0].paid and paid[1] == paid[0] and paid[0].cost == provider.bonus_cost(50)
    assert await asyncio.to_thread(seat.bonuses_paid, first) == [50]  # asked twice, paid once
    # Every place offered, with the provider's fees (and VAT) counted on the rewards together, and the bonus.
    assert await provider.spent_cents(RUN) == (provider.place_cost(3 * 150).total_cents
                                               + provider.bonus_cost(50).total_cents)

    blocked = seat.person("third")
    await provider.block(blocked, "copied answers")
    assert not await asyncio.to_thread(seat.may_take, recruitment.id, blocked)
    await provider.unblock(blocked)
    assert await asyncio.to_thread(seat.may_take, recruitment.id, blocked)

    await provider.expire(RUN)
    [stopped] = await provider.recruitments()
    assert not stopped.open


def test_the_feature_table_says_what_each_provider_supports() -> None:
    """docs/providers.md's table, row by row, against each provider's `supports`."""
    doc = (ROOT / "docs" / "providers.md").read_text()
    section = doc.split("## What each provider supports", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    rows: dict[str, list[str]] = {}
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    header = [cell.strip() for cell in table[0].strip().strip("|").split("|")][1:]
    assert header == list(PROVIDERS)
    assert list(rows) == [feature.value for feature in Feature]
    said: dict[str, Any] = {
        name: {feature.value for feature in Feature if rows[feature.value][i].startswith("yes")}
        for i, name in enumerate(PROVIDERS)
    }
    for name, provider in PROVIDERS.items():
        assert said[name] == {feature.value for feature in provider.supports}, name
        for feature in Feature:
            assert rows[feature.value][list(PROVIDERS).index(name)].split(" ")[0].rstrip(":;,") in ("yes", "no")
