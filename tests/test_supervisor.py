"""The supervisor's shutdown ends every task, even one that swallows its first cancellation."""

from __future__ import annotations

import asyncio

from server.supervisor import Supervisor


async def test_a_task_that_swallows_its_first_cancellation_is_cancelled_again_and_ends() -> None:
    started = asyncio.Event()
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                started.set()
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue  # as a wait that finished at the moment of the cancel would drop it
                raise

    supervisor = Supervisor("test")
    task = supervisor.spawn(stubborn(), name="stubborn")
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(supervisor.aclose(), 10)
    assert task.cancelled() and swallowed == 2
    assert len(supervisor) == 0
