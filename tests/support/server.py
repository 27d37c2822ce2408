"""A real uvicorn server on a free port, in a thread with its own event loop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from server.main import create_app
from server.serving import uvicorn_options
from server.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    app: FastAPI
    port: int
    settings: Settings

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@contextmanager
def run_in_thread(app: Any, port: int, *, name: str = "uvicorn", settings: Settings | None = None) -> Iterator[None]:
    """Run `app` under a real uvicorn (with Parley's options, `settings`' limits) on `port` in a thread with its
    own event loop, for the block's life."""
    settings = settings or Settings()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **uvicorn_options(settings)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"{name}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # uvicorn sets a flag and offers no event to wait on: poll it, bounded
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} on port {port} did not start; see the log above")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def serve(settings: Settings, port: int | None = None) -> Iterator[LiveServer]:
    port = port or free_port()
    settings = settings.model_copy(update={"port": port, "public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings)
    with run_in_thread(app, port, settings=settings):
        yield LiveServer(app=app, port=port, settings=settings)
