"""Flood limits: a token bucket per agent, so that reconnecting does not refill it.

A run keeps its agents' buckets (`Run.rate_limits`) beside its other per-agent state and drops an agent's
bucket when it releases the agent. Every socket of an agent, old or new, draws on the same bucket.
"""

from __future__ import annotations

import time


class TokenBucket:
    """`burst` frames at once, refilled at `per_s` frames a second."""

    def __init__(self, per_s: float, burst: int) -> None:
        self.per_s = per_s
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class AgentLimits:
    """One bucket per agent id, made on first use."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def bucket(self, agent_id: str, *, per_s: float, burst: int) -> TokenBucket:
        found = self._buckets.get(agent_id)
        if found is None:
            found = self._buckets[agent_id] = TokenBucket(per_s, burst)
        return found

    def release(self, agent_id: str) -> None:
        self._buckets.pop(agent_id, None)
