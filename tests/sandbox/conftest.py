"""A real uvicorn server running only the sandbox, a fake clock, and boto3 / httpx clients for it."""

from __future__ import annotations

import pathlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from server.sandbox import Sandbox
from tests.sandbox.sandbox_app import create_app, server_for

START = 1_800_000_000.0
EXTERNAL_QUESTION = """<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd">
<ExternalURL>{url}</ExternalURL><FrameHeight>500</FrameHeight></ExternalQuestion>"""


class FakeClock:
    def __init__(self, now: float = START):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def listening_socket() -> socket.socket:
    """A loopback socket already listening, so clients may connect before the server loop runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def mturk_client(endpoint: str, *, validate: bool = True) -> Any:
    """boto3 pointed at the sandbox with dummy credentials; nothing here can reach AWS."""
    config = Config(parameter_validation=validate, retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20)
    return boto3.client(
        "mturk",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


@dataclass
class SandboxServer:
    sandbox: Sandbox
    clock: FakeClock
    base_url: str
    state_path: pathlib.Path

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/sandbox/mturk"

    @property
    def task_url(self) -> str:
        return f"{self.base_url}/task"

    def external_question(self) -> str:
        return EXTERNAL_QUESTION.format(url=self.task_url)

    def mturk(self, *, validate: bool = True) -> Any:
        return mturk_client(self.endpoint, validate=validate)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(tmp_path: pathlib.Path, clock: FakeClock) -> Iterator[SandboxServer]:
    state_path = tmp_path / "sandbox.json"
    app, sandbox = create_app(state_path, clock)
    sock = listening_socket()
    host, port = sock.getsockname()
    uvicorn_server = server_for(app)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield SandboxServer(sandbox, clock, f"http://{host}:{port}", state_path)
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "the sandbox server did not stop"


@pytest.fixture
def mturk(server: SandboxServer) -> Any:
    return server.mturk()


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    with server.http() as client:
        yield client
