"""A time limit on one kind of wait that is entered thousands of times a second.

`asyncio.timeout` arms a timer when a wait starts and cancels it when the wait ends. Every frame a worker
sends and every frame Parley sends is such a wait (the heartbeat limit on a receive, the stuck-socket limit
on a send), so that is a timer armed and cancelled per frame. A `StallGuard` keeps one timer per limit
period instead: `start()` only notes the time, and the timer, when it fires, re-arms itself for whatever
is left of the current wait, or cancels the task if the wait really has lasted the whole limit. It is
asyncio.timeout's bookkeeping (cancel, then `uncancel` to tell its own cancellation from anyone else's),
with the timer made lazy.

    guard.start()
    try:
        await the_wait()
    except asyncio.CancelledError:
        if guard.expired():
            ... the wait lasted `limit` seconds ...
        else:
            raise
    finally:
        guard.stop()

One wait at a time per guard, and the guarded region must hold nothing but the wait: a cancellation from
the guard lands wherever the task is suspended.
"""

from __future__ import annotations

import asyncio


class StallGuard:
    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._since: float | None = None  # loop time at which the current wait started; None between waits
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None, "a StallGuard guards a wait inside a task"
        self._since = loop.time()
        self._task = task
        self._cancelling = task.cancelling()
        if self._timer is None:
            self._timer = loop.call_at(self._since + self.limit, self._check)

    def stop(self) -> None:
        self._since = None
        self._task = None

    def expired(self) -> bool:
        """In an `except CancelledError` of the guarded wait: was it this guard's doing (and no one else's)?"""
        if not self._fired or self._task is None:
            return False
        self._fired = False
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self._since is None or self._task is None:
            return  # between waits: stay disarmed until the next start()
        loop = asyncio.get_running_loop()
        left = self._since + self.limit - loop.time()
        if left > 0:
            self._timer = loop.call_at(self._since + self.limit, self._check)
            return
        self._fired = True
        self._task.cancel()
