"""The whole path on the built-in sandbox: publish, accept, chat, submit, sync, approve, bonus, top up, expire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from server.states import HitStatus
from server.store import Store
from server.store.hits import HitStore
from tests.hits.flow import chat_pair, requester
from tests.hits.harness import HitServer, eventually, open_hits


@pytest.fixture
async def db(chat_server: HitServer, db_url: str) -> AsyncIterator[Store]:
    store = Store(db_url)
    try:
        yield store
    finally:
        await store.close()


def _available(client: Any) -> Decimal:
    return Decimal(client.get_account_balance()["AvailableBalance"])


async def test_submitted_work_is_synced_then_approved_and_bonused_once(
    chat_server: HitServer, client: Any, db: Store
) -> None:
    a, b = await chat_pair(chat_server.base, client, "chat", ("AWORKERA", "AWORKERB"))
    hit_store = HitStore(db)

    async def synced() -> bool:
        records = {r.assignment_id: r for r in await hit_store.hits("chat", statuses=[HitStatus.SUBMITTED])}
        return {a.assignment_id, b.assignment_id} <= set(records)

    await eventually(synced, what="both assignments recorded as submitted")
    work = client.list_assignments_for_hit(HITId=a.hit_id)["Assignments"]
    assert [w["AssignmentStatus"] for w in work] == ["Submitted"]
    assert "<QuestionIdentifier>feedback</QuestionIdentifier>" in work[0]["Answer"]

    review = requester(db, chat_server.endpoint).review
    before = _available(client)
    await review.approve(a.assignment_id, "Thank you!")
    await review.approve(b.assignment_id)
    assert _available(client) == before  # approving spends what the HIT held
    await review.bonus(b.assignment_id, "0.25", "A lively chat")
    await review.bonus(b.assignment_id, "0.25", "A lively chat")  # a retry: paid once
    assert _available(client) == before - Decimal("0.30")  # 0.25 + 20% fee
    assert len(client.list_bonus_payments(AssignmentId=b.assignment_id)["BonusPayments"]) == 1
    assert client.get_assignment(AssignmentId=a.assignment_id)["Assignment"]["RequesterFeedback"] == "Thank you!"
    states = {agent.worker_id: agent.state for agent in await db.agents("chat")}
    assert states == {"AWORKERA": "approved", "AWORKERB": "approved"}
    assert await hit_store.spend("chat") >= 2 * 60 + 30  # at least the two worked HITs and the bonus


async def test_run_tops_up_after_each_conversation_and_expires_all_when_target_is_met(
    chat_server: HitServer, client: Any, db: Store
) -> None:
    await chat_pair(chat_server.base, client, "chat", ("AWORKERA", "AWORKERB"))
    await eventually(lambda: _open_count(client, 2), what="two new HITs after the first conversation")
    await chat_pair(chat_server.base, client, "chat", ("AWORKERC", "AWORKERD"))
    await eventually(lambda: _open_count(client, 0), what="every open HIT expired once the target is met")

    async def settled() -> bool:
        statuses = [r.status for r in await HitStore(db).hits("chat")]
        # HITs published while accepted workers had not joined yet (overbooking) closed with no work.
        return statuses.count("submitted") == 4 and set(statuses) <= {"submitted", "expired"}

    await eventually(settled, what="four HITs submitted, every other one expired with no work")


async def _open_count(client: Any, count: int) -> bool:
    return len(open_hits(client, "chat")) == count
