"""A real uvicorn serving only the built-in Prolific (and a stand-in study page), a fake clock, httpx."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from server.prolific_sandbox import API_PATH, ProlificSandbox, build_prolific_sandbox
from tests.sandbox.conftest import FakeClock, listening_socket
from tests.sandbox.sandbox_app import server_for

TOKEN = {"Authorization": "Token parley-test"}
URL_PARAMS = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"


@dataclass
class ProlificServer:
    sandbox: ProlificSandbox
    clock: FakeClock
    base_url: str
    state_path: pathlib.Path

    @property
    def api(self) -> str:
        return self.base_url + API_PATH

    def study_body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "Chat with a partner", "internal_name": "run-1", "description": "A short conversation.",
            "external_study_url": f"{self.base_url}/study?{URL_PARAMS}", "prolific_id_option": "url_parameters",
            "completion_codes": [
                {"code": "DONE1", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]},
                {"code": "LEFT1", "code_type": "OTHER", "actions": [{"action": "MANUALLY_REVIEW"}]},
            ],
            "total_available_places": 2, "estimated_completion_time": 10, "maximum_allowed_time": 30,
            "reward": 150, "device_compatibility": ["desktop"],
        }
        return body | changes


def make_app(sandbox_router: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(sandbox_router)

    @app.get("/study")
    async def study_page() -> PlainTextResponse:  # where a participant lands: the study URL, filled in
        return PlainTextResponse("study page")

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prolific(tmp_path: pathlib.Path, clock: FakeClock) -> Iterator[ProlificServer]:
    state_path = tmp_path / "prolific.json"
    sandbox, router = build_prolific_sandbox(state_path=state_path, clock=clock)
    sock = listening_socket()
    host, port = sock.getsockname()
    server = server_for(make_app(router))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield ProlificServer(sandbox, clock, f"http://{host}:{port}", state_path)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        sandbox.release()
        assert not thread.is_alive(), "the Prolific emulator did not stop"


@pytest.fixture
def api(prolific: ProlificServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=prolific.api, headers=TOKEN, timeout=10) as client:
        yield client


@pytest.fixture
def site(prolific: ProlificServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=prolific.base_url, timeout=10) as client:
        yield client
