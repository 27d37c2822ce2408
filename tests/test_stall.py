"""StallGuard: a time limit per wait, with one timer per limit period instead of one per wait."""

from __future__ import annotations

import asyncio

import pytest

from server.stall import StallGuard

LIMIT = 0.1


async def guarded(guard: StallGuard, wait: asyncio.Future[None]) -> str:
    guard.start()
    try:
        await wait
        return "done"
    except asyncio.CancelledError:
        if guard.expired():
            return "expired"
        raise
    finally:
        guard.stop()


async def test_a_wait_that_lasts_the_limit_is_ended() -> None:
    guard = StallGuard(LIMIT)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = asyncio.get_running_loop().time()
    assert await guarded(guard, never) == "expired"
    assert asyncio.get_running_loop().time() - started >= LIMIT
    assert asyncio.current_task() is not None and asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_short_waits_back_to_back_never_expire() -> None:
    guard = StallGuard(LIMIT)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5 * LIMIT  # five limit periods of waits, each well under the limit
    waits = 0
    while loop.time() < deadline:
        soon: asyncio.Future[None] = loop.create_future()
        loop.call_later(LIMIT / 10, soon.set_result, None)
        assert await guarded(guard, soon) == "done"
        waits += 1
    guard.close()
    assert waits >= 20


async def test_time_between_waits_does_not_count() -> None:
    guard = StallGuard(LIMIT)
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()
    first.set_result(None)
    assert await guarded(guard, first) == "done"
    await asyncio.sleep(2 * LIMIT)  # unguarded: the armed timer fires, finds no wait and disarms
    second: asyncio.Future[None] = loop.create_future()
    loop.call_later(LIMIT / 2, second.set_result, None)
    assert await guarded(guard, second) == "done"
    guard.close()


async def test_someone_elses_cancellation_is_not_taken_for_a_stall() -> None:
    guard = StallGuard(LIMIT)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(guarded(guard, never))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    guard.close()
