"""Parley as a real separate process (`python -m server.serving`: uvicorn with Parley's options; or another
command such as `parley run`), for tests that SIGKILL it or drive its entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(
        self, *, port: int, data_dir: Path, db_url: str, runs: dict[str, str], command: list[str] | None = None,
        **env: str,
    ) -> None:
        self.port = port
        self.command = command or [
            sys.executable, "-m", "server.serving", "--host", "127.0.0.1", "--port", str(port),
        ]
        self.log = data_dir / f"server-{port}.log"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PARLEY_"))}
        self.env = {
            **inherited,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": str(ROOT),
            "PARLEY_DATA_DIR": str(data_dir),
            "PARLEY_DATABASE_URL": db_url,
            "PARLEY_DEMO_RUNS": json.dumps(runs),
            "PARLEY_PORT": str(port),
            "PARLEY_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PARLEY_LOG_LEVEL": os.environ.get("PARLEY_TEST_SERVER_LOG_LEVEL", "WARNING"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling a process that has no other way to say it is up
        raise RuntimeError(f"server did not become healthy:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def running(db_url: str, data_dir: Path, runs: dict[str, str], **env: str) -> Iterator[ServerProcess]:
    """A server process on a free port serving `runs`, stopped (SIGTERM, then SIGKILL) at the end."""
    proc = ServerProcess(port=free_port(), data_dir=data_dir, db_url=db_url, runs=runs, **env)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
