"""Parley's built-in MTurk: a requester API emulator and a worker site, both under ``/sandbox``.

sandbox = build_sandbox(state_path=Path("data/sandbox.json"))
app.include_router(sandbox.router)
boto3.client("mturk", endpoint_url="http://127.0.0.1:8000/sandbox/mturk", ...)
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

from server.sandbox.core import Sandbox
from server.sandbox.errors import MTurkError, RequestError, ServiceFault, WorkerRefusal
from server.sandbox.model import Assignment, AssignmentStatus, SandboxState
from server.sandbox.routes_requester import requester_routes
from server.sandbox.routes_worker import worker_routes

DEFAULT_FRONTEND_DIR = pathlib.Path(__file__).resolve().parents[2] / "frontend" / "sandbox"

__all__ = [
    "Assignment",
    "AssignmentStatus",
    "MTurkError",
    "RequestError",
    "Sandbox",
    "SandboxState",
    "ServiceFault",
    "WorkerRefusal",
    "build_sandbox",
]


def build_sandbox(
    *,
    state_path: pathlib.Path,
    clock: Callable[[], float] = time.time,
    frontend_dir: pathlib.Path = DEFAULT_FRONTEND_DIR,
) -> Sandbox:
    """A sandbox keeping its state in ``state_path`` (loaded if it exists), telling time by ``clock()``."""
    sandbox = Sandbox(state_path=state_path, clock=clock, frontend_dir=frontend_dir)
    sandbox.router.include_router(requester_routes(sandbox))
    sandbox.router.include_router(worker_routes(sandbox))
    return sandbox
