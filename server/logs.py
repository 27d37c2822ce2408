"""Logging set-up: readable lines in a terminal, or one JSON object per line (PARLEY_LOG_FORMAT=json)
for a log collector. Pass ids with `extra={"run_id": ..., "conversation_id": ..., "agent_id": ...}`."""

from __future__ import annotations

import json
import logging
import time

CONTEXT_KEYS = ("run_id", "conversation_id", "agent_id", "worker_id")


class JsonFormatter(logging.Formatter):
    def __init__(self, instance: str = "") -> None:
        super().__init__()
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.instance:
            entry["instance"] = self.instance
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str = "text", instance: str = "") -> None:
    """`instance` names the serving process on every line (several may share a database and a log)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_parley", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter(instance))
    else:
        named = f"[{instance}] " if instance else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {named}%(name)s: %(message)s"))
    handler._parley = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
