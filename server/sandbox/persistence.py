"""Load and save the sandbox state as one JSON file, replaced atomically.

A write goes to a temporary file in the same directory, then ``os.replace`` swaps it in, so a process
killed mid-write leaves the previous complete state behind. (No fsync: the guarantee is against a killed
process, not a lost machine.)
"""

from __future__ import annotations

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
