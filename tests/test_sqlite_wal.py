"""SQLite's write-ahead log under writes that never pause: checkpoints must let it start over.

A checkpoint running beside a busy writer never catches up with it, and SQLite only reuses the WAL from
its start once a checkpoint has caught up; left alone the file grows without end and every page lookup
through its index slows down. The store's checkpointer finishes each round with writes held back.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from server.store import Store
from server.store import sqlite as local_sqlite

PAYLOAD = {"type": "message", "text": "x" * 200}


def wal_restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the log starts over."""
    header = wal.read_bytes()[:16]
    return int.from_bytes(header[12:16], "big") if len(header) == 16 else 0


async def test_the_wal_starts_over_while_writes_never_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_sqlite, "CHECKPOINT_EVERY_S", 0.05)
    monkeypatch.setattr(local_sqlite, "WAL_RESTART_BYTES", 0)  # finish every round, not only past 16 MB
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    await store.open()
    deadline = time.monotonic() + 1.5

    async def writer(agent: str) -> int:
        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            await store.append_events([(agent, seq, PAYLOAD)])
        return seq

    try:
        written = await asyncio.gather(*(writer(f"agent{k}") for k in range(50)))
        restarts = wal_restarts(tmp_path / "parley.db-wal")
    finally:
        await store.close()
    assert sum(written) > 1000  # the writers really were busy the whole time
    # Rounds every 50 ms for 1.5 s: each that catches up lets the next write start the log over.
    assert restarts >= 5, f"the WAL started over {restarts} times in 1.5 s of writes"


async def test_closing_the_store_waits_for_a_checkpoint_still_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a connection another thread is checkpointing with crashes the process: close must wait."""
    monkeypatch.setattr(local_sqlite, "CHECKPOINT_EVERY_S", 0.01)
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    checkpoint = local_sqlite._checkpoint

    def held_checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
        started.set()
        release.wait(10)
        try:
            return checkpoint(conn)
        except Exception as exc:  # a closed connection raises here; at full speed it crashes instead
            errors.append(exc)
            return 0, 0

    monkeypatch.setattr(local_sqlite, "_checkpoint", held_checkpoint)
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    await store.open()
    await store.append_events([("a", 1, PAYLOAD)])
    assert await asyncio.to_thread(started.wait, 10)
    closing = asyncio.create_task(store.close())
    done, _ = await asyncio.wait({closing}, timeout=1.0)  # bounded: close must not finish in this time
    release.set()
    await closing
    assert not done, "the store closed while a checkpoint thread was still using its connection"
    assert errors == []


@pytest.mark.parametrize(
    ("left", "wal_bytes", "held_after"),
    [
        ([5000, 4000, 3000, 2000], 40 * 2**20, None),  # never caught up, log under the force limit: no hold
        ([5000, 100], 40 * 2**20, 2),  # caught up on the second pass: writes held for the last pages only
        ([5000, 4000, 3000, 2000], 130 * 2**20, 4),  # never caught up and the log is past the force limit
        ([100], 2 * 2**20, None),  # a short log is left to start over by itself
    ],
)
async def test_writes_are_held_back_only_for_the_last_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, left: list[int], wal_bytes: int, held_after: int | None
) -> None:
    """A round copies beside the writer, pass after pass, and holds writes back only once at most
    HOLD_FRAMES pages are left (or the log is past WAL_FORCE_BYTES): at 2,000 lines a second a whole
    second's backlog took 10-66 ms to copy, and every chat line waited on it."""
    monkeypatch.setattr(local_sqlite, "CHECKPOINT_EVERY_S", 0.01)
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    assert store._write_lock is not None
    lock = store._write_lock
    calls: list[bool] = []  # per pass: were writes held back during it
    round_done = threading.Event()

    def scripted(conn: sqlite3.Connection) -> tuple[int, int]:
        calls.append(lock.locked())
        if lock.locked() or (len(calls) == len(left) and held_after is None):
            round_done.set()
        frames = wal_bytes // 4096  # the live log, in pages of the default size
        return (frames, left[min(len(calls), len(left)) - 1]) if not lock.locked() else (0, 0)

    monkeypatch.setattr(local_sqlite, "_checkpoint", scripted)
    await _one_write_then_wait(store, round_done, "the checkpointer ran no round")
    if held_after is None:
        assert calls[: len(left)] == [False] * len(left)
    else:  # one more pass beside the writer, between the database file's two syncs, then the hold
        assert calls[: held_after + 2] == [False] * (held_after + 1) + [True]


async def test_the_database_file_is_synced_beside_the_writer_before_writes_are_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that has not caught up does not sync the database file: left to the hold, its fsync wrote back
    the whole round's pages with every write waiting (7 ms growing to 46 ms a second as a 10,000-worker
    database grew). The round syncs the file with writes going on, copies what came meanwhile, syncs again,
    and only then holds writes back."""
    monkeypatch.setattr(local_sqlite, "CHECKPOINT_EVERY_S", 0.01)
    monkeypatch.setattr(local_sqlite, "WAL_RESTART_BYTES", 0)
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    assert store._write_lock is not None
    lock = store._write_lock
    steps: list[tuple[str, bool]] = []  # (what, were writes held back)
    held = threading.Event()
    checkpoint, sync_file = local_sqlite._checkpoint, local_sqlite._sync_file

    def recorded_checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
        steps.append(("copy", lock.locked()))
        if lock.locked():
            held.set()
        return checkpoint(conn)

    def recorded_sync(path: str) -> None:
        steps.append(("sync", lock.locked()))
        sync_file(path)

    monkeypatch.setattr(local_sqlite, "_checkpoint", recorded_checkpoint)
    monkeypatch.setattr(local_sqlite, "_sync_file", recorded_sync)
    await _one_write_then_wait(store, held, "the checkpointer held no write back")
    first_hold = steps.index(("copy", True))
    assert steps[first_hold - 4 : first_hold + 1] == [
        ("copy", False), ("sync", False), ("copy", False), ("sync", False), ("copy", True)
    ]
    assert ("sync", True) not in steps


async def _one_write_then_wait(store: Store, event: threading.Event, failure: str) -> None:
    """Open `store`, write once (which starts its checkpointer), wait up to 10 s for `event`, close."""
    await store.open()
    try:
        await store.append_events([("a", 1, PAYLOAD)])
        assert await asyncio.to_thread(event.wait, 10), f"{failure} in 10 s"
    finally:
        await store.close()
