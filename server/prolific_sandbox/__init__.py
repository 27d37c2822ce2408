"""Parley's built-in Prolific: the researcher API (``/sandbox/prolific/api/v1``) and a participant site.

sandbox = build_prolific_sandbox(state_path=Path("data/prolific.json"))
app.include_router(sandbox.router)
httpx.get(".../sandbox/prolific/api/v1/studies/", headers={"Authorization": "Token anything"})
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

from fastapi import APIRouter

from server.prolific_sandbox.core import ProlificSandbox
from server.prolific_sandbox.routes_api import api_routes
from server.prolific_sandbox.routes_participant import participant_routes

API_PATH = "/sandbox/prolific/api/v1"
COMPLETE_PATH = "/sandbox/prolific/submissions/complete"

__all__ = ["API_PATH", "COMPLETE_PATH", "ProlificSandbox", "build_prolific_sandbox"]


def build_prolific_sandbox(
    *, state_path: pathlib.Path, clock: Callable[[], float] = time.time
) -> tuple[ProlificSandbox, APIRouter]:
    sandbox = ProlificSandbox(state_path=state_path, clock=clock)
    router = APIRouter()
    router.include_router(api_routes(sandbox))
    router.include_router(participant_routes(sandbox))
    return sandbox, router
