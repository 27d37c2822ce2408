"""The servers under test, each a uvicorn process of its own (`python -m server.serving`): Parley
(`server.main:app`, configured by PARLEY_* variables) and the bare relay (`bench.echo:app`).
Sampled from outside with psutil."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0


def run_queue_wait_s(pid: int) -> float:
    """Seconds the process's main thread (its event loop) has spent runnable but waiting for a core, from
    Linux's /proc/<pid>/schedstat; 0.0 where that is not available. Over a phase, it tells a process held
    back by other work on the machine from one that had nothing to do."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerSpec:
    name: str
    app: str
    env: dict[str, str] = field(default_factory=dict)
    ws: str = "websockets-sansio"
    loop: str = "uvloop"
    per_message_deflate: bool = False
    instances: int = 1  # several: that many processes of the app, sharing `env` (one database, one Redis)


class ServerProcess:
    def __init__(self, spec: ServerSpec, log_path: Path, *, factory: bool = False) -> None:
        self.spec = spec
        self.factory = factory
        self.port = free_port()
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.peak_rss = 0
        self._log: IO[bytes] | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {**os.environ, **self.spec.env, "PARLEY_PUBLIC_URL": self.base}
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            # Parley's uvicorn options (server/serving.py) for both servers compared, as Parley is deployed
            sys.executable, "-m", "server.serving", "--app", self.spec.app, "--host", "127.0.0.1",
            "--port", str(self.port), "--ws", self.spec.ws, "--loop", self.spec.loop, "--log-level", "warning",
            "--no-access-log", "--backlog", "4096", *(["--factory"] if self.factory else []),
            *(["--ws-per-message-deflate"] if self.spec.per_message_deflate else []),
            cwd=REPO, env=env, stdout=self._log, stderr=asyncio.subprocess.STDOUT,
        )
        self.ps = psutil.Process(self.proc.pid)
        await self._wait_ready()
        self._sampler = asyncio.create_task(self._sample())

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base, timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.spec.name} server exited; see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)  # polling another process's readiness: there is no event to wait on
        raise RuntimeError(f"{self.spec.name} server not ready in {READY_TIMEOUT_S}s; see {self.log_path}")

    async def _sample(self) -> None:
        while True:
            self.peak_rss = max(self.peak_rss, self.rss())
            await asyncio.sleep(0.2)

    def rss(self) -> int:
        if self.ps is None:
            return 0
        try:
            return int(self.ps.memory_info().rss)
        except psutil.NoSuchProcess:
            return 0

    def cpu_s(self) -> float:
        if self.ps is None:
            return 0.0
        try:
            times = self.ps.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(times.user + times.system)

    def wait_s(self) -> float:
        return run_queue_wait_s(self.ps.pid if self.ps is not None else 0)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._log is not None:
            self._log.close()


class ServerGroup:
    """`spec.instances` server processes of one spec, measured together: CPU and memory are their sums."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        count = max(1, spec.instances)
        self.servers = [
            ServerProcess(spec, log_path if count == 1 else log_path.with_suffix(f".{i}{log_path.suffix}"))
            for i in range(count)
        ]

    @property
    def base(self) -> str:
        return self.servers[0].base

    @property
    def bases(self) -> list[str]:
        return [server.base for server in self.servers]

    @property
    def ps(self) -> psutil.Process | None:
        return self.servers[0].ps  # the one the profiler attaches to: the first, which owns the run

    @property
    def peak_rss(self) -> int:
        return sum(server.peak_rss for server in self.servers)

    async def start(self) -> None:
        """The first alone (it creates the schema and takes the run), then the others together."""
        try:
            await self.servers[0].start()
            await asyncio.gather(*(server.start() for server in self.servers[1:]))
        except BaseException:
            await self.stop()
            raise

    def rss(self) -> int:
        return sum(server.rss() for server in self.servers)

    def cpu_s(self) -> float:
        return sum(server.cpu_s() for server in self.servers)

    def wait_s(self) -> float:
        return sum(server.wait_s() for server in self.servers)

    async def stop(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.servers))


class Profiler:
    """py-spy attached to a server process, recording until stopped (collapsed stacks, for `bench.profile`)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        py_spy = Path(sys.executable).with_name("py-spy")
        self.proc = await asyncio.create_subprocess_exec(
            str(py_spy), "record", "--pid", str(self.pid), "--format", "raw", "--rate", "200", "--nonblocking",
            "--output", str(self.out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(self.proc.wait(), 60)
