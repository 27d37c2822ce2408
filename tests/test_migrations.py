"""Alembic migrations: a database made by the previous schema upgrades without losing rows; the start-up
check refuses an out-of-date schema with the command to run; the migrations build exactly the models' schema."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from server.migrations import MIGRATIONS, SchemaOutOfDate, check_schema, head_revision
from server.store import Store
from server.store.hits import HitStore

ROWS_0001 = {
    "meta": "INSERT INTO meta (key, value) VALUES ('token_secret', 'kept-secret')",
    "task_run": "INSERT INTO task_run (id, task_module, options, status, conversations_formed, created_at, owner, "
    "lease_until) VALUES ('run-old', 'worlds.qa_data_collection', '{}', 'active', 1, 1.0, '', 0.0)",
    "agent": "INSERT INTO agent (id, run_id, worker_id, assignment_id, hit_id, turk_submit_to, state, role, "
    "conversation_id, created_at, updated_at) VALUES ('ag-old', 'run-old', 'W-old', 'A-old', 'H-old', '', "
    "'submitted', 'Worker', 'conv-old', 1.0, 2.0)",
    "conversation": "INSERT INTO conversation (id, run_id, kind, \"index\", state, context, participants, "
    "end_reason, created_at, ended_at) VALUES ('conv-old', 'run-old', 'task', 0, 'completed', '{\"t\": 1}', "
    "'{\"Worker\": \"ag-old\"}', '', 1.0, 3.0)",
    "message": "INSERT INTO message (id, run_id, conversation_id, agent_id, client_id, sender, kind, text, data, "
    "created_at) VALUES ('msg-old', 'run-old', 'conv-old', 'ag-old', 'c1', 'Worker', 'chat', 'kept text', "
    "'{\"rating\": 5}', 1.5)",
    "event": "INSERT INTO event (agent_id, seq, payload, created_at) VALUES "
    "('ag-old', 1, '{\"type\": \"state\"}', 1.0)",
    "onboarding_result": "INSERT INTO onboarding_result (worker_id, task_name, passed, attempts, updated_at) "
    "VALUES ('W-old', 'qa', true, 1, 1.0)",
    "world_data": "INSERT INTO world_data (conversation_id, run_id, data, updated_at) VALUES "
    "('conv-old', 'run-old', '{\"answer\": \"kept\"}', 1.0)",
    "worker": "INSERT INTO worker (id, blocked, block_reason, created_at) VALUES ('W-bad', true, 'spam', 1.0)",
}


async def _drop_everything(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            def drop(sync: Connection) -> None:
                found = MetaData()
                found.reflect(sync)
                found.drop_all(sync)

            await conn.run_sync(drop)
    finally:
        await engine.dispose()


async def _run(url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        results = []
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(text(statement))
                results.append(result.all() if result.returns_rows else None)
        return results
    finally:
        await engine.dispose()


@pytest.fixture
def empty_db(db_url: str) -> Iterator[str]:
    asyncio.run(_drop_everything(db_url))  # PostgreSQL: alembic_version too, not only the models' tables
    yield db_url
    asyncio.run(_drop_everything(db_url))


def _alembic(url: str) -> Config:
    config = Config(str(MIGRATIONS.parent / "alembic.ini"))
    config.attributes["url"] = url
    return config


def test_a_database_made_by_the_previous_schema_upgrades_without_losing_rows(empty_db: str) -> None:
    command.upgrade(_alembic(empty_db), "0001")
    asyncio.run(_run(empty_db, *ROWS_0001.values()))
    with pytest.raises(SchemaOutOfDate, match="alembic upgrade head"):
        asyncio.run(check_schema(empty_db))

    command.upgrade(_alembic(empty_db), "head")

    assert asyncio.run(check_schema(empty_db)).action == "current"
    counts = asyncio.run(_run(empty_db, *(f"SELECT count(*) FROM {table}" for table in ROWS_0001)))
    assert [c[0][0] for c in counts] == [1] * len(ROWS_0001)

    async def read_back() -> None:
        store = Store(empty_db)
        await store.open()
        try:
            assert await store.secret() == "kept-secret"
            assert (await store.get_run("run-old")) is not None
            assert [m.text for m in await store.messages("conv-old")] == ["kept text"]
            assert await store.world_data("conv-old") == {"answer": "kept"}
            assert await store.worker_block("W-bad") == "spam"
            agent = await store.get_agent("ag-old")
            assert agent is not None and agent.state == "submitted"
        finally:
            await store.close()

    asyncio.run(read_back())


def test_the_migrations_build_exactly_the_models_schema(empty_db: str) -> None:
    command.upgrade(_alembic(empty_db), "head")

    async def differences() -> list[Any]:
        engine = create_async_engine(empty_db, poolclass=pool.NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
                )
        finally:
            await engine.dispose()

    assert asyncio.run(differences()) == [], "a model changed without a migration: alembic revision --autogenerate"


def test_an_empty_database_is_created_at_head_and_then_passes(empty_db: str) -> None:
    assert asyncio.run(check_schema(empty_db)).action == "created"
    assert asyncio.run(check_schema(empty_db)).action == "current"
    (version,) = asyncio.run(_run(empty_db, "SELECT version_num FROM alembic_version"))
    assert version == [(head_revision(),)]


def test_a_database_made_before_migrations_is_stamped_only_if_it_is_this_schema(empty_db: str) -> None:
    async def made_by_create_all() -> None:
        store = Store(empty_db)
        await store.open()
        await store.close()

    asyncio.run(made_by_create_all())
    assert asyncio.run(check_schema(empty_db)).action == "stamped"

    asyncio.run(_drop_everything(empty_db))
    command.upgrade(_alembic(empty_db), "0001")
    asyncio.run(_run(empty_db, "DROP TABLE alembic_version"))
    with pytest.raises(SchemaOutOfDate, match="alembic stamp 0001"):
        asyncio.run(check_schema(empty_db))


def test_a_database_from_a_newer_parley_is_refused(empty_db: str) -> None:
    command.upgrade(_alembic(empty_db), "head")
    asyncio.run(_run(empty_db, "UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaOutOfDate, match="newer Parley"):
        asyncio.run(check_schema(empty_db))


def test_hit_records_from_before_form_hits_upgrade_as_single_assignment_external_hits(empty_db: str) -> None:
    command.upgrade(_alembic(empty_db), "0002")
    asyncio.run(_run(
        empty_db,
        "INSERT INTO mturk_run (run_id, account, publishing, budget_cents, reward_cents, hit_type_id, next_slot, "
        "lifetime_s, assignment_duration_s, auto_approval_delay_s, overbook, locales, min_approval_rate, created_at) "
        "VALUES ('run-old', 'builtin', true, 500, 50, 'HT1', 1, 3600, 600, 60, 1.25, '[\"US\"]', 95, 1.0)",
        "INSERT INTO mturk_hit (token, run_id, slot, hit_id, status, charge_cents, expires_at, assignment_id, "
        "worker_id, assignment_status, auto_approve_at, created_at, updated_at) VALUES ('tok-old', 'run-old', 0, "
        "'HIT-old', 'submitted', 60, 2.0, 'A-old', 'W-old', 'Submitted', 0.0, 1.0, 1.0)",
    ))

    command.upgrade(_alembic(empty_db), "head")

    async def read_back() -> None:
        store = Store(empty_db)
        await store.open()
        try:
            hit_store = HitStore(store)
            plan = await hit_store.plan("run-old")
            assert plan is not None and (plan.question, plan.assignments, plan.next_slot) == ("external", 1, 1)
            [record] = await hit_store.hits("run-old")
            assert (record.question, record.item_id, record.max_assignments) == ("external", "", 1)
            assert (record.assignment_id, record.charge_cents) == ("A-old", 60)
            assert await hit_store.spend("run-old") == 60
            assert await hit_store.form_answers("run-old") == []
        finally:
            await store.close()

    asyncio.run(read_back())
