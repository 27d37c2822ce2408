"""A real server serving the task-UI runs of tests/browser/tasks.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import tasks
from tests.conftest import make_settings
from tests.support.server import LiveServer, serve


@pytest.fixture
def ui_live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(make_settings(db_url, tmp_path, tasks.RUNS)) as server:
        yield server
