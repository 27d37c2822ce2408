"""Finding a task module's Task declaration."""

from __future__ import annotations

import importlib
from typing import Any

from server.run_flags import OVERRIDES, FlagError, RunFlags, check_task
from worlds.base import Task


class TaskLoadError(ValueError):
    pass


def load_task(spec: str, options: dict[str, Any] | None = None) -> Task:
    """Build a Task from "module" (its `make_task(**options)`, else its `task`) or "module:factory", with the
    run's flags (`options[OVERRIDES]`, from `parley run`) applied over its declaration."""
    options = dict(options or {})
    flags = RunFlags.from_options(options.pop(OVERRIDES, None) or {})
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskLoadError(f"cannot import task module {module_name!r}: {exc}") from exc
    factory = getattr(module, attr or "make_task", None)
    if attr and not callable(factory):
        raise TaskLoadError(f"{module_name} has no factory {attr!r}")
    if callable(factory):
        task = factory(**(options or {}))
    elif options:
        raise TaskLoadError(f"{spec} has no make_task(**options), so it takes no options")
    else:
        task = getattr(module, "task", None)
    if not isinstance(task, Task):
        raise TaskLoadError(f"{module_name} must define `task = Task(...)` or `make_task(**options) -> Task`")
    task.load_contexts()
    if flags == RunFlags():
        return task
    task = flags.apply(task)
    try:
        check_task(task)
    except FlagError as exc:
        raise TaskLoadError(str(exc)) from None
    return task
