"""Group commit on its own: a caller's cancellation never leaves its write in doubt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from server.store.group_commit import Event, GroupCommit, RowsRefused


class FakeConnection:
    """Savepoints as marks in a list of pending rows: rolling back to one drops the rows written since."""

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self._marks: list[int] = []

    def exec_driver_sql(self, sql: str) -> None:
        if sql.startswith("SAVEPOINT"):
            self._marks.append(len(self.rows))
        elif sql.startswith("ROLLBACK TO"):
            del self.rows[self._marks[-1]:]
        elif sql.startswith("RELEASE"):
            self._marks.pop()
        else:
            raise AssertionError(f"unexpected SQL {sql!r}")


class Database:
    def __init__(self) -> None:
        self.committed: list[Any] = []
        self.transactions = 0  # begun, committed or not
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def transaction(self, fn: Callable[[Any], Any]) -> Any:
        self.entered.set()
        await self.release.wait()
        self.transactions += 1
        conn = FakeConnection()
        result = fn(conn)
        self.committed.extend(conn.rows)
        return result

    @staticmethod
    def insert(conn: Any, messages: list[dict[str, Any]], events: list[Event]) -> None:
        for message in messages:
            if message.get("bad"):
                raise ValueError("duplicate client id")
        conn.rows.extend([*messages, *events])


@pytest.fixture
async def db() -> Database:
    return Database()


async def test_a_failed_write_fails_only_its_caller(db: Database) -> None:
    group = GroupCommit(db.transaction, db.insert)
    good = group.write({"id": "m1"}, [("a", 1, {})])
    bad = group.write({"id": "m2", "bad": True}, [("b", 1, {})])
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert results[0] is None and isinstance(results[1], ValueError)
    assert db.committed == [{"id": "m1"}, ("a", 1, {})]
    await group.close()


async def test_a_group_whose_rows_fail_is_written_again_with_its_operations_applied_once(db: Database) -> None:
    group = GroupCommit(db.transaction, db.insert)
    applied: list[str] = []

    def op(conn: FakeConnection) -> str:
        applied.append("op")
        conn.rows.append("state change")
        return "done"

    results = await asyncio.gather(
        group.write({"id": "m1"}, [("a", 1, {})]),
        group.run(op),
        group.write({"id": "m2", "bad": True}, [("b", 1, {})]),
        return_exceptions=True,
    )
    assert results[0] is None and results[1] == "done" and isinstance(results[2], ValueError)
    assert applied == ["op"]  # the first try failed on the rows, before any operation ran
    assert db.transactions == 2
    assert db.committed == [{"id": "m1"}, ("a", 1, {}), "state change"]
    await group.close()


async def test_a_caller_cancelled_while_its_group_is_written_waits_and_learns_it_committed(db: Database) -> None:
    group = GroupCommit(db.transaction, db.insert)
    db.release.clear()
    calls: list[str] = []
    writer = asyncio.create_task(group.write(None, [("a", 1, {})], on_commit=lambda: calls.append("committed")))
    await db.entered.wait()  # the group holding the write is in flight
    writer.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the caller while the group is still in flight
    assert not writer.done()  # it waits for its write's fate
    db.release.set()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert calls == ["committed"] and db.committed == [("a", 1, {})]
    await group.close()


async def test_a_caller_cancelled_before_its_group_starts_writes_nothing(db: Database) -> None:
    group = GroupCommit(db.transaction, db.insert)
    db.release.clear()
    first = asyncio.create_task(group.write(None, [("a", 1, {})]))
    await db.entered.wait()  # the first group is in flight; the next write queues behind it
    calls: list[str] = []
    second = asyncio.create_task(group.write(None, [("b", 1, {})], on_commit=lambda: calls.append("committed")))
    await asyncio.sleep(0)  # let the second write enqueue
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    db.release.set()
    await first
    assert db.committed == [("a", 1, {})] and calls == []
    await group.close()


async def test_an_operation_returns_its_value_and_a_failing_one_rolls_back_alone(db: Database) -> None:
    group = GroupCommit(db.transaction, db.insert)

    def good(conn: Any) -> int:
        conn.rows.append("kept")
        return 7

    def bad(conn: Any) -> None:
        conn.rows.append("undone")
        raise KeyError("no agent")

    results = await asyncio.gather(group.run(good), group.run(bad), return_exceptions=True)
    assert results[0] == 7 and isinstance(results[1], KeyError)
    assert db.committed == ["kept"]
    await group.close()


async def test_a_group_of_rows_only_goes_in_one_statement_and_a_refused_one_is_written_again_alone(
    db: Database,
) -> None:
    """PostgreSQL's hot path: a group of rows only is one statement (one round trip, no transaction of
    ours); a group with an operation keeps its transaction; rows the database refuses are written again
    write by write, so only the failing caller fails."""
    statements: list[list[Any]] = []

    async def bulk_rows(messages: list[dict[str, Any]], events: list[Event]) -> None:
        if any(m.get("bad") for m in messages):
            raise RowsRefused("duplicate client id")
        statements.append([*messages, *events])
        db.committed.extend([*messages, *events])

    group = GroupCommit(db.transaction, db.insert, bulk_rows=bulk_rows)
    await asyncio.gather(group.write({"id": "m1"}, [("a", 1, {})]), group.write(None, [("b", 1, {})]))
    assert statements == [[{"id": "m1"}, ("a", 1, {}), ("b", 1, {})]] and db.transactions == 0

    results = await asyncio.gather(
        group.write({"id": "m2"}, [("a", 2, {})]),
        group.write({"id": "m3", "bad": True}, [("b", 2, {})]),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], ValueError)
    assert db.transactions == 1  # refused in bulk, then written alone in one transaction
    assert db.committed[-2:] == [{"id": "m2"}, ("a", 2, {})]

    def op(conn: FakeConnection) -> str:
        conn.rows.append("state change")
        return "done"

    assert await asyncio.gather(group.write({"id": "m4"}, [("a", 3, {})]), group.run(op)) == [None, "done"]
    assert db.transactions == 2 and len(statements) == 1  # an operation in the group: its transaction
    assert db.committed[-3:] == [{"id": "m4"}, ("a", 3, {}), "state change"]
    await group.close()
