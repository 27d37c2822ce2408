"""Fixtures: no real AWS credentials anywhere; a real server with the built-in sandbox and the HIT manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hits.harness import HitServer, mturk, serve, settings_for


@pytest.fixture
def chat_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"chat": "tests.hits.tasks:chat2"})) as server:
        yield server


@pytest.fixture
def client(chat_server: HitServer) -> Any:
    return mturk(chat_server.endpoint)
