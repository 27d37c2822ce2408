"""Money is safe: the budget cap stops publishing and bonuses; a retried creation makes nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.hits import BudgetExceeded, publish_run
from server.hits import plan as rules
from server.states import HitStatus
from server.store import Store
from server.store.hits import BonusRecord
from tests.hits import tasks
from tests.hits.flow import requester
from tests.hits.harness import HitServer, eventually, mturk, open_hits, serve, settings_for


@pytest.fixture
def capped_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    # A HIT of the chat task costs $0.60 (0.50 + 20%): $1.00 pays for one, not two.
    settings = settings_for(tmp_path, db_url, {"chat": "tests.hits.tasks:chat2"}, mturk_budget_usd=1.0)
    with serve(settings) as server:
        yield server


async def test_budget_cap_stops_publishing(capped_server: HitServer) -> None:
    client = mturk(capped_server.endpoint)
    await eventually(lambda: _count(client, 1), what="one HIT published")
    passes = capped_server.hits.passes

    async def later() -> bool:
        return capped_server.hits.passes >= passes + 3

    await eventually(later, what="three more passes")
    assert len(open_hits(client, "chat")) == 1
    store = Store(capped_server.settings.db_url)  # the test's own connection: a Store belongs to its loop
    try:
        assert await requester(store, capped_server.endpoint).hit_store.spend("chat") == 60
    finally:
        await store.close()


async def test_bonus_past_the_budget_is_refused_before_mturk_is_asked(chat_server: HitServer, tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'requester.db'}")
    await store.open()
    try:
        hit_store = requester(store, chat_server.endpoint).hit_store
        await publish_run(hit_store, run_id="side", account="builtin", task=tasks.chat2(), budget_usd=0.5, live=False,
                          public_url=chat_server.base)
        with pytest.raises(BudgetExceeded):
            await hit_store.reserve_bonus(BonusRecord(
                token="t1", run_id="side", assignment_id="A1", worker_id="AW", amount_cents=45, fee_cents=9, reason="r",
            ))
        assert await hit_store.bonuses("side") == []
    finally:
        await store.close()


async def test_creating_a_hit_again_with_its_token_makes_nothing_twice(chat_server: HitServer, tmp_path: Path) -> None:
    client = mturk(chat_server.endpoint)
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'requester.db'}")
    await store.open()
    try:
        manager = requester(store, chat_server.endpoint)
        plan = await publish_run(
            manager.hit_store, run_id="side", account="builtin", task=tasks.chat2(), budget_usd=0, live=False,
            public_url=chat_server.base,
        )
        hit_type = await manager.publisher.hit_type(plan, tasks.chat2())
        record = await manager.hit_store.reserve_hit("side", 60, lambda slot: rules.hit_token("side", slot))
        first = await manager.publisher.create(record, plan, hit_type)
        # A crash before the HIT id was written: the record is `creating` again, and creation is retried.
        await manager.hit_store.set_hit(record.token, hit_id=None, status=HitStatus.CREATING)
        again = await manager.publisher.create(record, plan, hit_type)
        assert again.hit_id == first.hit_id
        assert [h["HITId"] for h in open_hits(client, "side")] == [first.hit_id]
        assert [r.hit_id for r in await manager.hit_store.hits("side")] == [first.hit_id]
    finally:
        await store.close()


async def _count(client: Any, count: int) -> bool:
    return len(open_hits(client, "chat")) == count
