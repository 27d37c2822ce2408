"""One retry policy for every provider's calls: a bounded number of attempts, exponential backoff with full
jitter between them (or the provider's own `Retry-After`), and only for failures the provider says are
transient (throttled, unreachable, or a fault on a call that is safe to repeat).

Each provider's client turns its transport's failures into a `ProviderError` saying whether it is transient;
`retried` does the rest, the same for MTurk (boto3) and Prolific (httpx).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class ProviderError(Exception):
    """A refused or failed provider call. `transient`: trying again later may work; `retry_after`: the
    provider's own wait in seconds (a `Retry-After` header), when it sent one."""

    transient: bool = False
    retry_after: str | None = None


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 8.0
    call_timeout_s: float = 30.0  # bound on one call, on top of the client's own socket timeouts
    connect_s: float = 5.0  # the clients' connect and read timeouts
    read_s: float = 20.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """The provider's `Retry-After` (capped), else exponential backoff with full jitter: uniform in
        [0, min(max, base * 2**attempt)]."""
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_s)
        return random.uniform(0, min(self.max_s, self.base_s * 2**attempt))


async def retried(what: str, attempt: Callable[[], Awaitable[T]], retry: Retry) -> T:
    """`await attempt()`, again after a transient `ProviderError`, at most `retry.attempts` times in all; the
    last error, or the first that is not transient, is raised."""
    for number in range(retry.attempts):
        try:
            return await attempt()
        except ProviderError as error:
            if not error.transient or number == retry.attempts - 1:
                raise
            delay = retry.delay(number, error.retry_after)
            log.warning("%s failed (%s); retry %d in %.2fs", what, error, number + 1, delay)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")
