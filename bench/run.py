"""The load run: one target (Parley or the bare relay) at a time, under the same client load.

Phases, each started by the orchestrator for every client process at once:
arrive (join at `ramp_per_s`, pair) -> steady (one message every `interval_s` per worker) ->
saturate (closed loop: the next message as soon as the turn comes back) -> finish (goodbye, submit).
The server runs in its own process (or `instances` processes on one PostgreSQL and one Redis, each worker
joining one of them in turn, so that the two workers of a pair are on different instances); the clients in
`client_procs` other processes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.servers import Profiler, ServerGroup, ServerSpec, run_queue_wait_s
from bench.worker import dumps, loads

RUN_ID = "bench"


@dataclass
class LoadOptions:
    workers: int = 2000
    interval_s: float = 5.0
    steady_s: float = 30.0
    saturate_s: float = 15.0
    saturate_warmup_s: float = 2.0
    ramp_per_s: float = 200.0
    client_procs: int = 1
    client: str = "sansio"  # the simulated workers' websocket client: "sansio" (cheap) or "asyncio"
    client_gc: bool = False  # let the collector run in the client processes during measured phases
    database_url: str = ""  # "" = SQLite in a fresh directory
    ws: str = "websockets-sansio"
    loop: str = "uvloop"
    per_message_deflate: bool = False
    idle_settle_s: float = 2.0
    profile: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    instances: int = 1  # more than one: also run that many Parley instances on PostgreSQL and Redis
    redis_url: str = "redis://127.0.0.1:6379/0"


@dataclass
class Phase:
    start: float = 0.0
    until: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0  # all client processes together
    client_cpu_s_by_proc: list[float] = field(default_factory=list)  # each client process's own
    load_avg: float = 0.0  # the machine's 1-minute load average at the end of the phase
    server_wait_s: float = 0.0  # the servers' event loops runnable but waiting for a core (Linux schedstat)
    client_wait_s_by_proc: list[float] = field(default_factory=list)  # the same for each client process
    client_gc_max_ms: float = 0.0  # the longest collector pause in any client process during the phase
    client_gc_ms: float = 0.0  # all client processes' collector pauses in the phase


class BenchError(Exception):
    """A run that could not finish: the message says why and what to change."""


class ClientProc:
    def __init__(self, proc: asyncio.subprocess.Process, results: Path) -> None:
        self.proc = proc
        self.results = results

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"a client process exited while waiting for {event!r}")
        message: dict[str, Any] = loads(line)
        if message.get("event") != event:
            raise RuntimeError(f"expected {event!r} from a client process, got {message}")
        return message

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((dumps(command) + "\n").encode())

    def wait_s(self) -> float:
        return run_queue_wait_s(self.proc.pid)

    def cpu_s(self) -> float:
        import psutil

        try:
            times = psutil.Process(self.proc.pid).cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(times.user + times.system)


def parley_spec(opts: LoadOptions, data_dir: Path, *, instances: int = 1) -> ServerSpec:
    """Parley as it ships: one process; or `instances` processes sharing the database, data directory and a
    Redis prefix of their own (what crosses instances travels through Redis)."""
    several = {
        "PARLEY_REDIS_URL": opts.redis_url, "PARLEY_REDIS_PREFIX": f"parley-bench-{secrets.token_hex(4)}",
    } if instances > 1 else {}
    env = {
        "PARLEY_DATA_DIR": str(data_dir),
        "PARLEY_DATABASE_URL": opts.database_url,
        "PARLEY_DEMO_RUNS": dumps({RUN_ID: "bench.tasks:chat"}),
        "PARLEY_LOG_LEVEL": "WARNING",
        # The flood limit is per connection (10/s); the closed-loop saturation phase would trip it by design.
        "PARLEY_RATE_PER_S": "10000",
        "PARLEY_RATE_BURST": "10000",
        # Workers join directly; the HIT manager publishing the bench run's (huge) caps to the built-in sandbox
        # in the same process would be load that is not the chat path. `python -m bench publish` times that.
        "PARLEY_MTURK_PUBLISH": "[]",
        **several,
        **opts.extra_env,
    }
    name = "parley" if instances == 1 else f"parley-x{instances}"
    return ServerSpec(name, "server.main:app", env, opts.ws, opts.loop, opts.per_message_deflate, instances)


def echo_spec(opts: LoadOptions) -> ServerSpec:
    return ServerSpec("echo", "bench.echo:app", {}, opts.ws, opts.loop, opts.per_message_deflate)


async def run_load(spec: ServerSpec, opts: LoadOptions, out_dir: Path, tag: str) -> dict[str, Any]:
    """Start `spec`'s server, put the client load on it, and return the raw records and server figures."""
    server = ServerGroup(spec, out_dir / f"{tag}-{spec.name}-server.log")
    await server.start()
    clients: list[ClientProc] = []
    profiler: Profiler | None = None
    try:
        await asyncio.sleep(opts.idle_settle_s)  # let start-up garbage settle before the idle reading
        idle_rss = server.rss()
        arrive = Phase(start=time.monotonic())
        cpu0 = server.cpu_s()
        clients = await _spawn_clients(server.bases, opts, out_dir, f"{tag}-{spec.name}")
        arrive_s = opts.workers / opts.ramp_per_s
        wait_s = arrive_s + 180
        try:
            paired = [await c.expect("paired", wait_s) for c in clients]
        except TimeoutError:
            raise BenchError(
                f"{spec.name}: the workers were not all paired {wait_s:.0f} s after the first joined "
                f"(server CPU {server.cpu_s() - cpu0:.0f} s so far): the server, its database or the clients "
                f"cannot keep up with {opts.ramp_per_s:g} joins per second on this machine. "
                "Run again with a lower --ramp."
            ) from None
        arrive.until, arrive.server_cpu_s = time.monotonic(), server.cpu_s() - cpu0
        # From each client process's start (its imports included) to its workers all paired.
        arrive.client_cpu_s_by_proc = [c.cpu_s() for c in clients]
        arrive.client_cpu_s = sum(arrive.client_cpu_s_by_proc)
        arrive.load_avg = round(os.getloadavg()[0], 2)
        connected_rss = server.rss()

        if opts.profile:
            profiler = Profiler(server.ps.pid if server.ps else 0, out_dir / f"{tag}-{spec.name}-profile.txt")
            await profiler.start()
        steady = await _timed_phase(
            server, clients, "steady", "steady_done", opts.steady_s, interval=opts.interval_s,
            timeout=opts.steady_s + 120,
        )
        saturate = await _timed_phase(
            server, clients, "saturate", "saturate_done", opts.saturate_s, timeout=opts.saturate_s + 120,
        ) if opts.saturate_s > 0 else Phase()  # --saturate 0: steady load only
        if profiler is not None:
            await profiler.stop()
        for c in clients:
            c.send(cmd="finish")
        for c in clients:
            await c.expect("finished", 300)
        peak_rss = server.peak_rss
    finally:
        for c in clients:
            if c.proc.returncode is None:
                c.proc.kill()
            await c.proc.wait()
        await server.stop()
    records: dict[str, Any] = {"workers": [], "latencies": [], "cross_latencies": []}
    for c in clients:
        part = loads(c.results.read_bytes())
        records["workers"] += part["workers"]
        records["latencies"] += part["latencies"]
        records["cross_latencies"] += part.get("cross_latencies", [])
    return {
        "server": spec.name,
        "instances": max(1, spec.instances),
        "records": records,
        "paired_reported": sum(p["paired"] for p in paired),
        "idle_rss": idle_rss,
        "connected_rss": connected_rss,
        "peak_rss": peak_rss,
        "arrive": asdict(arrive),
        "steady": asdict(steady),
        "saturate": asdict(saturate),
        "profile": str(profiler.out) if profiler is not None else "",
    }


async def _spawn_clients(bases: list[str], opts: LoadOptions, out_dir: Path, tag: str) -> list[ClientProc]:
    clients = []
    shares = [opts.workers // opts.client_procs + (1 if k < opts.workers % opts.client_procs else 0)
              for k in range(opts.client_procs)]
    for k, count in enumerate(shares):
        results = out_dir / f"{tag}-clients{k}.json"
        config = {
            "bases": bases, "first": sum(shares[:k]),
            "run_id": RUN_ID, "prefix": f"{tag.replace('-', '')}p{k}w", "count": count,
            "ramp_per_s": opts.ramp_per_s / opts.client_procs, "results_path": str(results), "seed": k,
            "client": opts.client, "quiet_gc": not opts.client_gc,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.clients", dumps(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=2**20,
        )
        clients.append(ClientProc(proc, results))
    return clients


async def _timed_phase(
    server: ServerGroup, clients: list[ClientProc], cmd: str, done: str, length_s: float, *,
    timeout: float, interval: float | None = None,
) -> Phase:
    phase = Phase(start=time.monotonic() + 0.5)
    phase.until = phase.start + length_s
    extra = {"interval": interval} if interval is not None else {}
    for c in clients:
        c.send(cmd=cmd, start=phase.start, until=phase.until, **extra)
    await asyncio.sleep(max(0.0, phase.start - time.monotonic()))
    cpu0, ccpu0 = server.cpu_s(), [c.cpu_s() for c in clients]
    wait0, cwait0 = server.wait_s(), [c.wait_s() for c in clients]
    await asyncio.sleep(max(0.0, phase.until - time.monotonic()))
    phase.server_cpu_s = server.cpu_s() - cpu0
    phase.server_wait_s = server.wait_s() - wait0
    phase.client_wait_s_by_proc = [c.wait_s() - before for c, before in zip(clients, cwait0, strict=True)]
    phase.client_cpu_s_by_proc = [c.cpu_s() - before for c, before in zip(clients, ccpu0, strict=True)]
    phase.client_cpu_s = sum(phase.client_cpu_s_by_proc)
    phase.load_avg = round(os.getloadavg()[0], 2)
    for c in clients:
        figures = await c.expect(done, timeout)
        phase.client_gc_ms += figures.get("gc_ms", 0.0)
        phase.client_gc_max_ms = max(phase.client_gc_max_ms, figures.get("gc_max_ms", 0.0))
    return phase
