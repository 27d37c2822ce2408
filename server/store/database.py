"""The connection plumbing under the Store: engines, transactions, group commit, keyed and bulk reads.

SQLite (the default) takes one writer at a time. There, group commits and keyed reads run in the event
loop's thread on connections of their own (`sqlite.LocalSQLite`: cheaper than any driver-thread hand-off);
reads of many rows go through the async driver. The other writes (runs, workers, HIT records) take the same
asyncio lock as the group commit, so SQLite never sees two writers. PostgreSQL takes writes concurrently
through the async driver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy import Connection, event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from server.store.group_commit import Event, GroupCommit, JsonText, OnCommit, Operation, RowsRefused
from server.store.models import EventRow, MessageRow, now
from server.store.sqlite import LocalSQLite, bulk_insert, sqlite_pragmas

_EVENT = EventRow.__table__  # type: ignore[attr-defined]
_MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]

T = TypeVar("T")
PG_WRITERS = 4  # group commits in flight at once on PostgreSQL, each on a connection of its own


def _json_dumps(value: Any) -> str:
    if type(value) is JsonText:
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_insert_messages_sqlite = bulk_insert(_MESSAGE, _json_dumps)
_insert_events_sqlite = bulk_insert(_EVENT, _json_dumps)


def _unnest_insert(table: Any, first: int) -> str:
    """`INSERT INTO table (every column) SELECT * FROM unnest($first::type[], ...)`: one parameter, an
    array, per column, typed from the table as its DDL has it."""
    types = {"JSON": "json", "FLOAT": "float8", "INTEGER": "int"}
    arrays = ", ".join(f"${first + i}::{types.get(type(c.type).__name__.upper(), 'varchar')}[]"
                       for i, c in enumerate(table.columns))
    return f"INSERT INTO {table.name} ({', '.join(c.name for c in table.columns)}) SELECT * FROM unnest({arrays})"


_PG_MESSAGE_COLUMNS = [column.name for column in _MESSAGE.columns]
_DATA = _PG_MESSAGE_COLUMNS.index("data")
_PG_ROWS = f"WITH m AS ({_unnest_insert(_MESSAGE, 1)}) {_unnest_insert(_EVENT, 1 + len(_PG_MESSAGE_COLUMNS))}"


def _prepare_sqlite_path(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """One database: its engines, the group commit, and the transaction and read primitives the
    Store's named operations are written with."""

    def __init__(self, url: str) -> None:
        _prepare_sqlite_path(url)
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        json = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        # PostgreSQL: connections are kept (an overflow connection is opened, and TLS-negotiated, per use) and
        # not pinged on every checkout (a round trip per read): a connection the server dropped fails one
        # operation and is replaced.
        pool = {} if self.is_sqlite else {"pool_size": 20, "max_overflow": 10}
        self.engine: AsyncEngine = create_async_engine(url, **pool, **json)
        # Reads need no transaction of their own: no BEGIN and ROLLBACK round trips around each one.
        self._reads = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._write_lock: asyncio.Lock | None = None
        self._local: LocalSQLite | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas)
            self._write_lock = asyncio.Lock()
            self._local = LocalSQLite(url, json, self._write_lock)
        inserter = self._insert_rows_sqlite if self.is_sqlite else self._insert_rows
        self._group = GroupCommit(
            self._in_transaction, inserter, writers=1 if self.is_sqlite else PG_WRITERS,
            bulk_rows=None if self.is_sqlite else self._insert_rows_pg,
        )

    @property
    def backend(self) -> str:
        return "sqlite" if self.is_sqlite else make_url(self.url).get_backend_name()

    async def open(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)

    async def close(self) -> None:
        await self._group.close()
        if self._local is not None:
            await self._local.close()
        await self.engine.dispose()

    async def drop_all(self) -> None:
        """Tests and the benchmark only: an empty database, its schema revision included (a revision left
        behind would make the next server refuse the database as out of date)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction of its own, not group-committed: for writes that read first (HIT bookkeeping,
        leases, review). The store's modules and their neighbours (`store/hits.py`, `store/review.py`)
        use it with `fetch_one` / `fetch_all`, the Store's public query helpers."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self.engine.begin() as conn:
            yield conn

    async def _in_transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run a synchronous function of a connection inside one transaction (the group commit's writer)."""
        if self._local is not None and self._write_lock is not None:
            async with self._write_lock:  # never while another connection's transaction is open
                return self._local.write(fn)
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)

    async def _write(self, op: Operation, on_commit: OnCommit = None) -> Any:
        """A write the caller waits on, group-committed with whatever else is queued."""
        return await self._group.run(op, on_commit)

    async def fetch_one(self, stmt: Any, params: dict[str, Any] | None = None) -> Any:
        """One row by key. On SQLite read in place: an indexed lookup costs less than any hand-off.

        The frequent lookups pass a statement built once, with `bindparam`s, and their `params`: building
        a statement and its cache key costs more than SQLite's own lookup."""
        if self._local is not None:
            return self._local.read(lambda conn: conn.execute(stmt, params).first())
        async with self._reads.connect() as conn:
            return (await conn.execute(stmt, params)).first()

    async def fetch_all(self, stmt: Any, params: dict[str, Any] | None = None) -> Sequence[Any]:
        """Any number of rows: through the async driver, so a long read never holds up the event loop."""
        async with self._reads.connect() as conn:
            return (await conn.execute(stmt, params)).all()

    async def ping(self) -> bool:
        return (await self.fetch_one(select(1))) is not None

    @staticmethod
    def _insert_events(conn: Connection, events: Sequence[Event]) -> None:
        if events:
            stamp = now()
            conn.execute(
                insert(_EVENT),
                [{"agent_id": a, "seq": s, "payload": p, "created_at": stamp} for a, s, p in events],
            )

    @staticmethod
    def _insert_rows(conn: Connection, messages: list[dict[str, Any]], events: list[Event]) -> None:
        if messages:
            conn.execute(insert(_MESSAGE), messages)
        Database._insert_events(conn, events)

    async def _insert_rows_pg(self, messages: list[dict[str, Any]], events: list[Event]) -> None:
        """PostgreSQL's hot path: a group's messages and events in one statement, in a transaction of its
        own: three round trips (BEGIN, the statement, COMMIT) where SQLAlchemy's took four or five.

        Not the statement alone in autocommit (one round trip): a statement waiting on a lock when this
        process dies still commits once the lock is free, after a new process has read the streams, and
        its rows then collide with what the new one writes. A transaction commits only when a live
        process says COMMIT."""
        stamp = now()
        columns = [[m[name] for m in messages] for name in _PG_MESSAGE_COLUMNS]
        columns[_DATA] = [_json_dumps(data) for data in columns[_DATA]]
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            try:
                async with driver.transaction():
                    await driver.execute(
                        _PG_ROWS, *columns, [a for a, _, _ in events], [s for _, s, _ in events],
                        [_json_dumps(p) for _, _, p in events], [stamp] * len(events),
                    )
            except asyncpg.PostgresError as exc:  # the server refused the statement: none of it was written
                raise RowsRefused(str(exc)) from exc

    @staticmethod
    def _insert_rows_sqlite(conn: Connection, messages: list[dict[str, Any]], events: list[Event]) -> None:
        if messages:
            _insert_messages_sqlite(conn, messages)
        if events:
            stamp = now()
            rows = [{"agent_id": a, "seq": s, "payload": p, "created_at": stamp} for a, s, p in events]
            _insert_events_sqlite(conn, rows)
