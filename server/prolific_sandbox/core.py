"""``ProlificSandbox``: the emulator's state behind one lock, kept in one JSON file replaced atomically.

Every operation reads ``clock()`` once, applies what time decided (submissions past their study's maximum
time become TIMED-OUT), does its work and, when anything changed, writes the file before answering. An
operation that refuses (``ProlificError``) leaves the state as it was. One process writes the file: the
one holding ``<state>.lock`` (the same rule as the built-in MTurk's).
"""

from __future__ import annotations

import logging
import os
import pathlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from server.prolific_sandbox.errors import ProlificError
from server.prolific_sandbox.model import ProlificState
from server.prolific_sandbox.submissions import advance
from server.sandbox.persistence import StateLock

log = logging.getLogger(__name__)
T = TypeVar("T")


def load(path: pathlib.Path) -> ProlificState:
    return ProlificState.model_validate_json(path.read_bytes()) if path.exists() else ProlificState()


def save(path: pathlib.Path, state: ProlificState) -> None:
    """Write to a temporary file beside it, then swap it in: a killed process leaves the last whole state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(state.model_dump_json().encode())
        os.replace(temp, path)
    except BaseException:
        pathlib.Path(temp).unlink(missing_ok=True)
        raise


class Elsewhere(ProlificError):
    def __init__(self) -> None:
        super().__init__(
            503, 150300, "Service unavailable",
            "Another Parley process on this data directory serves the built-in Prolific; call it there.",
        )


class ProlificSandbox:
    def __init__(self, *, state_path: pathlib.Path, clock: Callable[[], float]) -> None:
        self.state_path = state_path
        self.clock = clock
        self._lock = threading.RLock()
        self._holder = StateLock(state_path)
        self._state = ProlificState()

    @property
    def held(self) -> bool:
        with self._lock:
            if self._holder.held:
                return True
            if not self._holder.try_acquire():
                return False
            self._state = load(self.state_path)
            log.info("this process now serves the built-in Prolific (%s)", self.state_path)
            return True

    def release(self) -> None:
        with self._lock:
            self._holder.release()

    @contextmanager
    def session(self) -> Iterator[tuple[ProlificState, float]]:
        with self._lock:
            if not self.held:
                raise Elsewhere()
            now = self.clock()
            before = self._state.model_dump_json()
            advance(self._state, now)
            try:
                yield self._state, now
            except ProlificError:
                self._state = ProlificState.model_validate_json(before)
                if advance(self._state, now):
                    save(self.state_path, self._state)
                raise
            except BaseException:
                self._state = load(self.state_path)
                raise
            if self._state.model_dump_json() != before:
                save(self.state_path, self._state)

    def run(self, operation: Callable[[ProlificState, float], T]) -> T:
        """``operation(state, now)`` under the lock; saved if it changed anything, undone if it refused."""
        with self.session() as (state, now):
            return operation(state, now)

    def set_funds(self, amount: int) -> None:
        """Set the workspace's deposits in minor units (tests and the participant site's top-up)."""
        def apply(state: ProlificState, now: float) -> None:
            state.funds = amount

        self.run(apply)
