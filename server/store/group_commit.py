"""Group commit: hot writes queued and written by one writer task, many callers' writes per transaction.

Each caller returns only after the transaction holding its write has committed. If a group fails, its
writes are retried one transaction each, so one caller's failure (a duplicate client id) never fails or
half-writes another's. A caller cancelled before its group starts writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

Event = tuple[str, int, dict[str, Any]]  # (agent_id, seq, payload)
Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
Inserter = Callable[[AsyncConnection, list[dict[str, Any]], list[Event]], Awaitable[None]]

GROUP_MAX = 500  # writes per transaction


@dataclass
class _Write:
    """One caller's share of a group: an optional message row and its events."""

    message: dict[str, Any] | None
    events: Sequence[Event]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _resolve(done: asyncio.Future[None], failure: BaseException | None) -> None:
    if done.done():
        return
    if failure is None:
        done.set_result(None)
    else:
        done.set_exception(failure)


class GroupCommit:
    def __init__(self, transaction: Transaction, insert: Inserter) -> None:
        self._transaction = transaction
        self._insert = insert
        self._queue: list[_Write] = []
        self._queued = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def write(self, message: dict[str, Any] | None, events: Sequence[Event]) -> None:
        """Queue a write for the writer task; return once the transaction holding it has committed."""
        write = _Write(message, events)
        self._queue.append(write)
        self._queued.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_groups(), name="store:group-commit")
        await write.done

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        for write in self._queue:
            _resolve(write.done, RuntimeError("the store was closed before this write"))
        self._queue.clear()

    async def _write_groups(self) -> None:
        """The writer task, owned by this object (stopped by `close()`): drain the queue, a group at a time."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
                try:
                    await self._commit(group)
                except asyncio.CancelledError:
                    for write in group:
                        _resolve(write.done, RuntimeError("the store was closed during this write"))
                    raise

    async def _commit(self, group: list[_Write]) -> None:
        group = [w for w in group if not w.done.cancelled()]
        if not group:
            return
        try:
            async with self._transaction() as conn:
                messages = [w.message for w in group if w.message is not None]
                await self._insert(conn, messages, [e for w in group for e in w.events])
        except Exception as exc:
            failure = exc
        else:
            for write in group:
                _resolve(write.done, None)
            return
        if len(group) == 1:
            _resolve(group[0].done, failure)
            return
        for write in group:  # find whose write failed: one transaction each, each caller its own outcome
            await self._commit([write])
