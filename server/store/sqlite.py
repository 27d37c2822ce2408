"""SQLite in the event loop's own thread, and the pragmas every SQLite connection of Parley's gets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import JSON, Connection, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
CHECKPOINT_EVERY_S = 1.0
WAL_KEEP_BYTES = 64 * 2**20  # a WAL file that grew past this is cut back when it starts over
# Below this much live log the WAL is left to start over by itself (under light load a checkpoint catches up
# on its own), so writes are held back, for the checkpoint's last part and its fsync, only when the log is
# growing. The live log, not the file: the file keeps its size (up to WAL_KEEP_BYTES) when it starts over.
WAL_RESTART_BYTES = 32 * 2**20
# Writes are held back only for the last few pages: passes beside the writer come first until at most this
# many WAL frames (pages) are left to copy, so the hold is the fsync and a few pages, not the tens of
# milliseconds a whole second's backlog took at 2,000 lines a second (every chat line waiting on it).
HOLD_FRAMES = 256
CATCH_UP_PASSES = 4
# A writer faster than any pass leaves more than HOLD_FRAMES behind: once the live log passes this, it is
# cut back anyway, with writes held back as long as that takes (a long log slows every page lookup).
WAL_FORCE_BYTES = 4 * WAL_RESTART_BYTES


class LocalSQLite:
    """SQLite in the event loop's own thread: one connection that writes, one that reads.

    A group commit or a keyed read takes tens of microseconds of SQLite's time; handing it to a driver
    thread costs more than that in thread switches, and each statement's return to the loop waits for the
    interpreter lock. So group commits and keyed reads run here, in place. The two things that can take
    long stay off the loop: reads of many rows (`Store.fetch_all`, through the async driver) and WAL
    checkpoints (automatic checkpoints are off on the writer; `_checkpoints` runs them in a thread).

    `write_lock` is the store's lock that every SQLite write takes. A checkpoint beside a busy writer never
    catches up with it, and the WAL only starts over once one has: left alone it grows without end (over
    500 MB in a minute of saturation), and every page lookup through its index gets slower. So each round
    copies the bulk beside the writer, in passes until little is left, then, if the log has grown past
    `WAL_RESTART_BYTES`, syncs the database file beside the writer and finishes with writes held back for
    a moment: only when at most `HOLD_FRAMES` pages are left, unless the log has passed `WAL_FORCE_BYTES`.
    """

    def __init__(self, url: str, json: dict[str, Any], write_lock: asyncio.Lock) -> None:
        sync_url = make_url(url).set(drivername="sqlite")
        self._path = str(sync_url.database)
        self._writer_engine = create_engine(sync_url, poolclass=StaticPool, **json)
        event.listen(self._writer_engine, "connect", _sqlite_writer_connect)
        event.listen(self._writer_engine, "begin", _sqlite_begin)
        self._reader_engine = create_engine(sync_url, poolclass=StaticPool, **json)
        event.listen(self._reader_engine, "connect", sqlite_pragmas)
        self._writer: Connection | None = None
        self._reader: Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._write_lock = write_lock
        self._writes = 0

    def write(self, fn: Callable[[Connection], T]) -> T:
        if self._writer is None:
            self._writer = self._writer_engine.connect()
        with self._writer.begin():
            result = fn(self._writer)
        self._writes += 1
        if self._checkpointer is None or self._checkpointer.done():
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoints(), name="store:checkpoint")
        return result

    def read(self, fn: Callable[[Connection], T]) -> T:
        if self._reader is None:
            self._reader = self._reader_engine.connect()
        try:
            return fn(self._reader)
        finally:
            self._reader.rollback()  # end the read: the next one sees everything committed since

    async def _checkpoints(self) -> None:
        """Copy the WAL into the database file every second while there are writes, in a thread."""
        page = 0  # the database's page size, read once: the live log is counted in pages
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            if self._writes == 0:
                return
            self._writes = 0
            conn = await _to_thread(sqlite3.connect, self._path, timeout=5.0, check_same_thread=False)
            try:
                page = page or await _to_thread(_page_size, conn)
                frames, left = await _to_thread(_checkpoint, conn)  # the bulk, while writes go on
                for _ in range(CATCH_UP_PASSES - 1):
                    if left <= HOLD_FRAMES:
                        break
                    frames, left = await _to_thread(_checkpoint, conn)  # what was written meanwhile
                live = frames * page
                if live >= WAL_RESTART_BYTES and (left <= HOLD_FRAMES or live >= WAL_FORCE_BYTES):
                    # A pass that has not caught up with the writer does not sync the database file, so the
                    # round's copies are still in the OS's cache: the hold's fsync would write them all back
                    # with writes held (at 10,000 workers that hold grew with the file, 7 ms to 46 ms at
                    # 180 MB, every second). Sync them beside the writer, copy what came meanwhile, sync
                    # again: the hold then syncs a few pages.
                    await _to_thread(_sync_file, self._path)
                    await _to_thread(_checkpoint, conn)
                    await _to_thread(_sync_file, self._path)
                    async with self._write_lock:  # the rest, with none: the WAL starts over at the next write
                        await _to_thread(_checkpoint, conn)
            finally:
                await _to_thread(conn.close)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer_engine.dispose()
        self._reader_engine.dispose()


async def _to_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`asyncio.to_thread`, except that a cancellation is raised only once the thread's call has returned.

    Cancelling the awaiting task does not stop the thread: without this, the checkpointer's `finally` would
    close the connection while a thread is still checkpointing with it, which crashes the process."""
    job = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        while not job.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(job)
        raise


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
    """In a worker thread, on a connection of its own (never one the loop is using). Returns the frames
    (pages) in the live log and how many of them it left to copy (written after it started, or held by a
    reader)."""
    _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return max(0, int(frames)), max(0, int(frames) - int(copied))


def _sync_file(path: str) -> None:
    """In a worker thread: write the database file's pages in the OS's cache to disk (an fsync on a
    descriptor of its own: it syncs the file, whoever wrote the pages)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _page_size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA page_size").fetchone()[0])


def bulk_insert(table: Table, dumps: Callable[[Any], str]) -> Callable[[Connection, list[dict[str, Any]]], None]:
    """An insert of many rows, handed to the sqlite3 driver as plain tuples.

    The hot path stores a message and its events per chat line; SQLAlchemy's per-row work (bind processors,
    compiled parameters) costs about as much as SQLite's own insert there. Rows are column dicts, every
    column present; JSON columns go through `dumps`, as SQLAlchemy's JSON type would. A unique-key clash
    raises SQLAlchemy's IntegrityError, as the ORM path does, so callers handle one exception type.
    """
    names = [column.name for column in table.columns]
    json_columns = {column.name for column in table.columns if isinstance(column.type, JSON)}
    convert = [(name, name in json_columns) for name in names]
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    def insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
        params = [tuple(dumps(row[name]) if is_json else row[name] for name, is_json in convert) for row in rows]
        try:
            conn.connection.driver_connection.executemany(sql, params)  # type: ignore[union-attr]
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(sql, None, exc) from exc

    return insert


def _sqlite_writer_connect(dbapi_connection: Any, record: Any) -> None:
    """The in-loop writer: the driver's own transaction handling off (SQLAlchemy's BEGIN below and its
    savepoints work as written), automatic checkpoints off (they would stall the loop)."""
    sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
    dbapi_connection.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
