"""Parley's Prolific provider against the built-in emulator, over HTTP, as it would talk to Prolific."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select, update

from server.providers.base import (
    BudgetExceeded,
    Provider,
    RecruitmentSpec,
    RejectionCategory,
    SubmissionStatus,
)
from server.providers.prolific import BonusUncertain, ProlificProvider, ProlificRefusal, codes_for
from server.providers.prolific_api import ProlificApi, ProlificError, Retry
from server.store import Store
from server.store.prolific import ProlificRecords, StudyEntry
from tests.prolific.conftest import ProlificServer
from tests.prolific.helpers import hand_in, take_place, try_place

FAST = Retry(attempts=3, base_s=0.01, max_s=0.05, read_s=5)
REASON = "Every turn of this conversation was copied from the instructions; no answer addressed the question. " * 2


def spec(prolific: ProlificServer, run_id: str = "run-1", reward: int = 150) -> RecruitmentSpec:
    return RecruitmentSpec(
        run_id=run_id, title="Chat with a partner", description="A short conversation about a picture.",
        task_url=f"{prolific.base_url}/study?run={run_id}", reward_cents=reward, estimated_minutes=10,
        max_minutes=30,
    )


def provider_for(prolific: ProlificServer, store: Store, **api: object) -> ProlificProvider:
    return ProlificProvider(
        ProlificApi(prolific.api, "parley-test", retry=FAST, **api),  # type: ignore[arg-type]
        ProlificRecords(store, "builtin"), fee_percent=42.8, vat_percent=20.0, is_live=False,
    )


@pytest.fixture
async def provider(prolific: ProlificServer, store: Store) -> AsyncIterator[ProlificProvider]:
    made = provider_for(prolific, store)
    yield made
    await made.aclose()


async def test_the_prolific_provider_is_a_provider(provider: ProlificProvider) -> None:
    assert isinstance(provider, Provider)
    assert (provider.words.recruitment, provider.words.place, provider.words.submission) == (
        "study", "place", "submission"
    )


async def test_publishing_a_run_makes_one_active_study_whose_url_carries_prolifics_parameters(
    provider: ProlificProvider, prolific: ProlificServer, site: httpx.Client
) -> None:
    recruitment = await provider.publish(spec(prolific), 2)
    seen = (recruitment.run_id, recruitment.status, recruitment.places, recruitment.open)
    assert seen == ("run-1", "ACTIVE", 2, True)
    params = take_place(site, recruitment.id, "PID-A")
    assert params["run"] == "run-1" and params["PROLIFIC_PID"] == "PID-A" and params["STUDY_ID"] == recruitment.id
    [submission] = await provider.submissions("run-1")
    assert submission.id == params["SESSION_ID"] and submission.status == SubmissionStatus.ACTIVE
    again = await provider.publish(spec(prolific), 4)  # a top-up raises the same study's places
    assert (again.id, again.places) == (recruitment.id, 4)
    assert [r.id for r in await provider.recruitments()] == [recruitment.id]


async def forget_study_ids(store: Store, run_id: str) -> None:
    """As if killed after Prolific answered, before the study's id was recorded."""
    async with store.transaction() as conn:
        await conn.execute(update(StudyEntry.__table__).where(  # type: ignore[attr-defined]
            StudyEntry.__table__.c.id == select(func.max(StudyEntry.__table__.c.id))  # type: ignore[attr-defined]
            .where(StudyEntry.__table__.c.run_id == run_id).scalar_subquery()  # type: ignore[attr-defined]
        ).values(study_id=""))


async def test_a_crash_between_creating_the_study_and_recording_it_adopts_the_study_by_its_name(
    prolific: ProlificServer, store: Store
) -> None:
    first = provider_for(prolific, store)
    await first.publish(spec(prolific), 2)
    await forget_study_ids(store, "run-1")
    await first.aclose()
    second = provider_for(prolific, store)
    recruitment = await second.publish(spec(prolific), 3)
    await second.aclose()
    assert recruitment.places == 3
    assert len(prolific.sandbox.run(lambda state, now: list(state.studies))) == 1


async def test_expire_stops_the_study_and_the_next_publish_opens_a_new_one(
    provider: ProlificProvider, prolific: ProlificServer
) -> None:
    first = await provider.publish(spec(prolific), 1)
    await provider.expire("run-1")
    [stopped] = await provider.recruitments()
    assert stopped.status == "COMPLETED" and not stopped.open
    second = await provider.publish(spec(prolific), 1)
    assert second.id != first.id and second.open


async def test_submissions_are_listed_and_approved_or_rejected_with_a_category(
    provider: ProlificProvider, prolific: ProlificServer, site: httpx.Client
) -> None:
    study = await provider.publish(spec(prolific), 2)
    codes = codes_for("run-1")
    done = take_place(site, study.id, "PID-A")["SESSION_ID"]
    left = take_place(site, study.id, "PID-B")["SESSION_ID"]
    hand_in(site, "PID-A", codes.done)
    hand_in(site, "PID-B", codes.paid_incomplete)
    listed = {s.id: (s.status, s.code) for s in await provider.submissions("run-1")}
    assert listed == {done: (SubmissionStatus.AWAITING_REVIEW, codes.done),
                      left: (SubmissionStatus.AWAITING_REVIEW, codes.paid_incomplete)}
    assert (await provider.approve(done)).status == SubmissionStatus.APPROVED
    assert (await provider.approve(done)).status == SubmissionStatus.APPROVED  # a repeat changes nothing
    with pytest.raises(ProlificRefusal, match="at least 100 characters"):
        await provider.reject(left, "too short", RejectionCategory.LOW_EFFORT)
    rejected = await provider.reject(left, REASON, RejectionCategory.FAILED_INSTRUCTIONS)
    assert (rejected.status, rejected.provider_status) == (SubmissionStatus.REJECTED, "REJECTED")


async def test_a_bonus_is_paid_once_under_retry_and_restart(
    provider: ProlificProvider, prolific: ProlificServer, site: httpx.Client, store: Store
) -> None:
    study = await provider.publish(spec(prolific), 1)
    session = take_place(site, study.id, "PID-A")["SESSION_ID"]
    hand_in(site, "PID-A", codes_for("run-1").done)
    first = await provider.bonus(session, 125, "a great conversation", key="great")
    again = await provider.bonus(session, 125, "a great conversation", key="great")
    restarted = provider_for(prolific, store)
    after_restart = await restarted.bonus(session, 125, "a great conversation", key="great")
    await restarted.aclose()
    assert first.paid and again == first and after_restart == first
    assert (first.cost.paid_cents, first.cost.fee_cents, first.cost.vat_cents) == (125, 54, 11)
    paid = prolific.sandbox.run(lambda state, now: state.submissions[session].bonus_payments)
    assert paid == [125]


async def test_a_bonus_whose_payment_answer_was_lost_is_never_paid_again(
    prolific: ProlificServer, site: httpx.Client, store: Store
) -> None:
    """The pay call reaches Prolific (which pays) but its answer is lost: Parley must not pay a second time."""
    real = httpx.AsyncHTTPTransport()

    class LoseThePayAnswer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            reply = await real.handle_async_request(request)
            if request.url.path.endswith("/pay/"):
                await reply.aread()
                raise httpx.ReadTimeout("the answer was lost", request=request)
            return reply

    flaky = provider_for(prolific, store, transport=LoseThePayAnswer())
    study = await flaky.publish(spec(prolific), 1)
    session = take_place(site, study.id, "PID-A")["SESSION_ID"]
    with pytest.raises(ProlificError, match="No answer"):
        await flaky.bonus(session, 100, "thanks", key="k")
    with pytest.raises(BonusUncertain):
        await flaky.bonus(session, 100, "thanks", key="k")
    await flaky.aclose()
    await real.aclose()
    assert prolific.sandbox.run(lambda state, now: state.submissions[session].bonus_payments) == [100]


async def test_a_rate_limited_call_is_retried_and_succeeds(prolific: ProlificServer, store: Store) -> None:
    real = httpx.AsyncHTTPTransport()
    refused: list[str] = []

    class RateLimitOnce(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not refused:
                refused.append(request.url.path)
                return httpx.Response(429, json={"error": {"status": 429, "title": "Too many requests"}})
            return await real.handle_async_request(request)

    limited = provider_for(prolific, store, transport=RateLimitOnce())
    recruitment = await limited.publish(spec(prolific), 1)
    await limited.aclose()
    await real.aclose()
    assert refused and recruitment.open


async def test_the_budget_counts_places_bonuses_fees_and_vat_and_refuses_past_the_cap(
    provider: ProlificProvider, prolific: ProlificServer, site: httpx.Client
) -> None:
    # A place of 150: 150 + 65 fee (42.8%, rounded up) + 13 VAT (20% of the fee) = 228.
    assert provider.place_cost(150).total_cents == 228
    await provider.publish(spec(prolific), 2, budget_cents=500)
    assert await provider.spent_cents("run-1") == 2 * 150 + 129 + 26  # fees on the total, rounded up
    with pytest.raises(BudgetExceeded, match="past its budget of 500"):
        await provider.publish(spec(prolific), 3, budget_cents=500)
    [study] = await provider.recruitments()
    assert study.places == 2
    session = take_place(site, study.id, "PID-A")["SESSION_ID"]
    hand_in(site, "PID-A", codes_for("run-1").done)
    with pytest.raises(BudgetExceeded):
        await provider.bonus(session, 100, "thanks", key="over", budget_cents=500)
    assert prolific.sandbox.run(lambda state, now: state.bonuses) == {}


async def test_a_blocked_participant_cannot_take_a_place_in_parleys_studies(
    provider: ProlificProvider, prolific: ProlificServer, site: httpx.Client
) -> None:
    study = await provider.publish(spec(prolific), 2)
    await provider.block("PID-BAD", "copied answers")
    refused = try_place(site, study.id, "PID-BAD")
    assert refused.status_code == 409 and "not eligible" in refused.text
    await provider.unblock("PID-BAD")
    assert take_place(site, study.id, "PID-BAD")["PROLIFIC_PID"] == "PID-BAD"


async def test_a_crash_while_creating_a_runs_second_study_adopts_that_study_not_the_stopped_one(
    provider: ProlificProvider, prolific: ProlificServer, store: Store
) -> None:
    first = await provider.publish(spec(prolific), 1)
    await provider.expire("run-1")
    second = await provider.publish(spec(prolific), 1)
    await forget_study_ids(store, "run-1")  # only the second's
    again = await provider.publish(spec(prolific), 2)
    assert (again.id, again.places) == (second.id, 2) and again.id != first.id
    assert len(prolific.sandbox.run(lambda state, now: list(state.studies))) == 2
