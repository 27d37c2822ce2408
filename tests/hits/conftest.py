"""Fixtures: no real AWS credentials anywhere; a real server with the built-in sandbox and the HIT manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hits.harness import HitServer, mturk, serve, settings_for


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def chat_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"chat": "tests.hits.tasks:chat2"})) as server:
        yield server


@pytest.fixture
def client(chat_server: HitServer) -> Any:
    return mturk(chat_server.endpoint)
