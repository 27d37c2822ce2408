"""Failed admin logins are throttled per client address and overall, so the admin token cannot be guessed
at network speed.

Each failure takes a token from two buckets: the client address's and the server's. A request finding
either bucket empty is refused with 429 before its token is even compared, so a throttled guess tells
nothing. Correct logins take no token, and a flooding address empties only its own bucket once its
guesses are refused, so the real admin, from another address, still gets in. Buckets live in the
process: each instance throttles on its own (a guesser spreading over N instances gets N times the rate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PER_ADDRESS = (5, 12.0)  # a burst of 5 failures per client address, then one more every 12 s
OVERALL = (30, 2.0)  # a burst of 30 failures across all addresses, then one more every 2 s
MAX_ADDRESSES = 10_000  # the addresses remembered before refilled ones are forgotten


@dataclass
class Bucket:
    capacity: int
    refill_s: float
    tokens: float = field(init=False)
    at: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.capacity)

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) / self.refill_s)
        self.at = now

    def wait_s(self, now: float) -> float:
        """Seconds until one token is there (0 if there is one now)."""
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.refill_s

    def take(self, now: float) -> None:
        self.refill(now)
        self.tokens = max(0.0, self.tokens - 1)


class LoginThrottle:
    """Counts failed admin credentials; `retry_after` says how long a client must wait before it may try."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.overall = Bucket(*OVERALL)
        self.addresses: dict[str, Bucket] = {}

    def retry_after(self, address: str) -> int:
        """Whole seconds this address must wait before its next attempt is checked; 0: check it now."""
        now = self.clock()
        bucket = self.addresses.get(address)
        wait = max(self.overall.wait_s(now), bucket.wait_s(now) if bucket else 0.0)
        return math.ceil(wait)

    def failed(self, address: str) -> None:
        now = self.clock()
        if address not in self.addresses and len(self.addresses) >= MAX_ADDRESSES:
            self._forget_refilled(now)
        bucket = self.addresses.setdefault(address, Bucket(*PER_ADDRESS, at=now))
        bucket.take(now)
        self.overall.take(now)

    def _forget_refilled(self, now: float) -> None:
        for address, bucket in list(self.addresses.items()):
            if bucket.wait_s(now) == 0 and bucket.tokens >= bucket.capacity:
                del self.addresses[address]
        if len(self.addresses) >= MAX_ADDRESSES:  # all busy: forget the oldest rather than grow
            del self.addresses[next(iter(self.addresses))]
