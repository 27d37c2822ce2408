"""Load and save the sandbox state as one JSON file, replaced atomically.

A write goes to a temporary file in the same directory, then ``os.replace`` swaps it in, so a process
killed mid-write leaves the previous complete state behind. (No fsync: the guarantee is against a killed
process, not a lost machine.)
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import tempfile

from server.sandbox.model import SandboxState


def load_state(path: pathlib.Path) -> SandboxState:
    if not path.exists():
        return SandboxState()
    return SandboxState.model_validate_json(path.read_bytes())


def save_state(path: pathlib.Path, state: SandboxState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = state.model_dump_json().encode()
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(payload)
        os.replace(temp_name, path)
    except BaseException:
        pathlib.Path(temp_name).unlink(missing_ok=True)
        raise


class StateLock:
    """One writer per state file: an advisory lock (``flock``) on ``<state>.lock``, held for the process's
    life once taken. The kernel lets it go when the process dies, however it dies, so another Parley
    process on the same data directory takes the sandbox over on its next try."""

    def __init__(self, state_path: pathlib.Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
