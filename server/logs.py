"""Logging set-up: readable lines in a terminal, or one JSON object per line (PARLEY_LOG_FORMAT=json)
for a log collector, written by python-json-logger. Pass ids with
`extra={"run_id": ..., "conversation_id": ..., "agent_id": ...}`: every `extra` key becomes a field."""

from __future__ import annotations

import logging
import time

from pythonjsonlogger.orjson import OrjsonFormatter


class JsonFormatter(OrjsonFormatter):
    """`time` (UTC, ms, `Z`), `level`, `logger`, `message`, the instance's id (`instance`), then the record's
    `extra` fields (run_id, conversation_id, agent_id, worker_id...) and `exception` when there is one."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, instance: str = "") -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "exc_info": "exception"},
            static_fields={"instance": instance} if instance else None,
        )
        self.converter = time.gmtime  # UTC, as the `Z` says


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
