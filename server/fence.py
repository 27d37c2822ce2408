"""The fence: what an effect outside the process checks first (see `server/ownership.py`)."""

from __future__ import annotations

from collections.abc import Callable

# Whether this process may still act on a run: it holds the run's lease and the lease is in time.
Fence = Callable[[str], bool]


def always(_run_id: str) -> bool:
    """One process alone on its database, or a requester's command acting directly."""
    return True


class LeaseLost(RuntimeError):
    """This process no longer holds the run's lease: it must not act on the run."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"this Parley instance no longer owns run {run_id!r}; another instance may serve it")
        self.run_id = run_id
