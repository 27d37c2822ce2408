"""Group commit: writes queued and written by one writer task, many callers' writes per transaction.

A write is either rows (a message and the events that deliver it: the hot path, inserted in bulk) or an
operation (a function of a database connection: a state change, a new agent, a conversation). The writer
task hands a whole group to one synchronous function, run in a single transaction: on SQLite in the
store's writer thread (one thread hop per group, not one per statement), on PostgreSQL through the async
driver. Inside it every write has a savepoint of its own, so one caller's failure (a duplicate client id,
an illegal state change) rolls back only that caller's write and fails only that caller.

Each caller returns only after the transaction holding its write has committed. A caller cancelled before
its group starts writes nothing; a caller cancelled while its group is being written waits for the group
(its write may still commit) and only then sees its cancellation. A write's `on_commit` callback runs as
soon as its transaction has committed, whether or not its caller is still waiting: that is how a caller
that was cancelled meanwhile still learns its write went in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection


class JsonText(str):
    """An event payload already serialized as JSON (the frame that was sent): stored as it is."""


Event = tuple[str, int, dict[str, Any] | JsonText]  # (agent_id, seq, payload)
Operation = Callable[[Connection], Any]
OnCommit = Callable[[], None] | None
RowInserter = Callable[[Connection, list[dict[str, Any]], list[Event]], None]
# Runs a synchronous function of a connection inside one transaction and returns its result.
Transaction = Callable[[Callable[[Connection], Any]], Awaitable[Any]]
# Inserts a group's rows in one statement, in a transaction of its own (PostgreSQL: BEGIN, the statement,
# COMMIT); raises RowsRefused when the database refused them (nothing of them was written).
BulkRows = Callable[[list[dict[str, Any]], list[Event]], Awaitable[None]]


class RowsRefused(Exception):
    """The database refused a group's rows (a duplicate client id, a value too long): none was written."""

GROUP_MAX = 2000  # writes per transaction: bounds how long one group holds the loop (SQLite writes in it)


@dataclass(slots=True)
class _Write:
    """One caller's share of a group: rows (an optional message and its events) or an operation."""

    message: dict[str, Any] | None = None
    events: Sequence[Event] = ()
    op: Operation | None = None
    on_commit: OnCommit = None
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    taken: bool = False  # its group has started: the write's fate is the group's
    finished: bool = False  # its fate is known
    settled: asyncio.Future[None] | None = None  # made only for a caller cancelled while its group is written


class _RowsFailed(Exception):
    """A group's bulk rows failed: its transaction is rolled back and the group written again, write by write."""


@dataclass
class _Outcome:
    value: Any = None
    failure: BaseException | None = None


def _settle(write: _Write, outcome: _Outcome) -> None:
    """A write's fate is known: tell its commit callback (if it committed) and its caller (if still waiting)."""
    if write.finished:
        return
    write.finished = True
    if outcome.failure is None and write.on_commit is not None:
        write.on_commit()
    if write.settled is not None and not write.settled.done():
        write.settled.set_result(None)
    if write.done.done():
        return
    if outcome.failure is None:
        write.done.set_result(outcome.value)
    else:
        write.done.set_exception(outcome.failure)


class GroupCommit:
    """`writers` groups may be in flight at once, each in a transaction of its own: one for SQLite (one
    writer at a time anyway), several for PostgreSQL, where a group spends most of its time waiting on
    round trips and concurrent transactions are what the server is for. Concurrent groups never hold two
    writes of one caller that depend on each other: every caller waits for its write to commit before it
    makes the next (a channel's writes are serialized by its lock)."""

    def __init__(
        self, transaction: Transaction, insert_rows: RowInserter, *, writers: int = 1, bulk_rows: BulkRows | None = None
    ) -> None:
        self._transaction = transaction
        self._insert_rows = insert_rows
        self._bulk_rows = bulk_rows  # a group of rows only (the hot path) goes this way when given
        self._queue: list[_Write] = []
        self._queued = asyncio.Event()
        self._writer_count = writers
        self._writers: set[asyncio.Task[None]] = set()  # a writer leaves the set when its task ends

    async def write(self, message: dict[str, Any] | None, events: Sequence[Event], on_commit: OnCommit = None) -> None:
        """Queue rows for the writer task; return once the transaction holding them has committed."""
        await self._enqueue(_Write(message=message, events=events, on_commit=on_commit))

    async def run(self, op: Operation, on_commit: OnCommit = None) -> Any:
        """Queue an operation; return its result once the transaction holding it has committed."""
        return await self._enqueue(_Write(op=op, on_commit=on_commit))

    async def _enqueue(self, write: _Write) -> Any:
        self._queue.append(write)
        self._queued.set()
        if len(self._writers) < self._writer_count:  # the first write, or a writer ended: start what is missing
            loop = asyncio.get_running_loop()
            for _ in range(self._writer_count - len(self._writers)):
                writer = loop.create_task(self._write_groups(), name="store:group-commit")
                writer.add_done_callback(self._writers.discard)
                self._writers.add(writer)
        try:
            return await write.done
        except asyncio.CancelledError:
            if write.taken and not write.finished:  # its group is being written: wait for its fate
                write.settled = write.settled or asyncio.get_running_loop().create_future()
                while not write.settled.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(write.settled)
            raise

    async def close(self) -> None:
        writers = list(self._writers)
        for writer in writers:
            writer.cancel()
        for writer in writers:
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        closed = _Outcome(failure=RuntimeError("the store was closed before this write"))
        for write in self._queue:
            _settle(write, closed)
        self._queue.clear()

    async def _write_groups(self) -> None:
        """The writer task, owned by this object (stopped by `close()`): drain the queue, a group at a time."""
        while True:
            await self._queued.wait()
            await asyncio.sleep(0)  # one pass of the loop: writes made ready by the same wake-up join this group
            self._queued.clear()
            while self._queue:
                group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
                try:
                    await self._commit(group)
                except asyncio.CancelledError:
                    closed = _Outcome(failure=RuntimeError("the store was closed during this write"))
                    for write in group:
                        _settle(write, closed)
                    raise

    async def _commit(self, group: list[_Write]) -> None:
        dropped = _Outcome(failure=asyncio.CancelledError())
        for write in group:
            if write.done.cancelled():
                _settle(write, dropped)  # its caller was cancelled before the group started: never written
        group = [w for w in group if not w.done.cancelled()]
        if not group:
            return
        for write in group:
            write.taken = True
        try:
            try:
                if self._bulk_rows is not None and all(w.op is None for w in group):
                    outcomes = await self._bulk(self._bulk_rows, group)
                else:
                    outcomes = await self._transaction(lambda conn: self._apply(conn, group))
            except _RowsFailed:  # rolled back whole: write again, each write in a savepoint of its own
                outcomes = await self._transaction(lambda conn: self._apply(conn, group, alone=True))
        except Exception as exc:  # the transaction itself failed (connection, commit): nothing was written
            outcomes = [_Outcome(failure=exc)] * len(group)
        for write, outcome in zip(group, outcomes, strict=True):
            _settle(write, outcome)

    @staticmethod
    async def _bulk(bulk_rows: BulkRows, group: list[_Write]) -> list[_Outcome]:
        """A group of rows only, in one statement: all of them or none, as the group's transaction would."""
        try:
            await bulk_rows([m for w in group if (m := w.message) is not None], [e for w in group for e in w.events])
        except RowsRefused as exc:
            raise _RowsFailed() from exc
        return [_Outcome() for _ in group]

    def _apply(self, conn: Connection, group: list[_Write], *, alone: bool = False) -> list[_Outcome]:
        """Inside the group's transaction (synchronous): every write, each undone alone if it fails.

        The rows of the whole group go in first, in bulk and without a savepoint: a savepoint costs more
        than the rows of a quiet moment's group. If they fail (someone's duplicate client id), the
        transaction is rolled back whole (nothing else is in it yet) and the group is written again with
        `alone`, where each write has a savepoint of its own and only the failing caller fails."""
        outcomes = [_Outcome() for _ in group]
        rows = [i for i, w in enumerate(group) if w.op is None]
        if rows and alone:
            for i in rows:
                outcomes[i] = self._alone(conn, self._rows_of(group[i]))
        elif rows:
            try:
                self._insert_rows(
                    conn,
                    [m for i in rows if (m := group[i].message) is not None],
                    [e for i in rows for e in group[i].events],
                )
            except Exception as exc:
                raise _RowsFailed() from exc
        for i, write in enumerate(group):
            if write.op is not None:
                outcomes[i] = self._alone(conn, write.op)
        return outcomes

    def _rows_of(self, write: _Write) -> Operation:
        def insert(conn: Connection) -> None:
            self._insert_rows(conn, [write.message] if write.message is not None else [], list(write.events))

        return insert

    @staticmethod
    def _alone(conn: Connection, op: Operation) -> _Outcome:
        """`op` in a savepoint: undone alone if it fails. The savepoint is plain SQL, the same on both
        databases: SQLAlchemy's `begin_nested` compiles a new statement for every savepoint it names."""
        conn.exec_driver_sql("SAVEPOINT parley_write")
        try:
            value = op(conn)
        except Exception as exc:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT parley_write")
            conn.exec_driver_sql("RELEASE SAVEPOINT parley_write")
            return _Outcome(failure=exc)
        conn.exec_driver_sql("RELEASE SAVEPOINT parley_write")
        return _Outcome(value=value)
