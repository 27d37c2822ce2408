"""Logging set-up: one line per event, with the logger name, readable in a terminal and in a container."""

from __future__ import annotations

import logging


def configure(level: str) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_parley", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._parley = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
