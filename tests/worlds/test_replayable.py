"""Every task Parley ships declares its world replayable, so a restart continues its conversations
(docs/authoring.md, "Replayable worlds"), and no shipped world draws from the `random` module or reads the
clock instead of `self.random`."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import worlds
from worlds.base import Task

TASK_MODULES = sorted(
    name for _, name, is_pkg in pkgutil.iter_modules(worlds.__path__)
    if not is_pkg and hasattr(importlib.import_module(f"worlds.{name}"), "make_task")
)


def test_the_shipped_tasks_are_found() -> None:
    assert len(TASK_MODULES) >= 9, TASK_MODULES


@pytest.mark.parametrize("module", TASK_MODULES)
def test_every_shipped_task_is_replayable(module: str) -> None:
    task = importlib.import_module(f"worlds.{module}").make_task()
    assert isinstance(task, Task) and task.replayable, f"worlds.{module} does not declare replayable=True"


@pytest.mark.parametrize("module", TASK_MODULES)
def test_no_shipped_world_reads_the_clock_or_the_random_module(module: str) -> None:
    source = (Path(worlds.__path__[0]) / f"{module}.py").read_text()
    assert not re.search(r"\b(time\.(time|monotonic)|datetime\.now|random\.(random|choice|shuffle|sample|randint))\(",
                         source), f"worlds.{module} decides with the clock or the random module"
