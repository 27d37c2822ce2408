"""A client process: a share of the simulated workers, driven phase by phase by the orchestrator.

`python -m bench.clients '<config json>'`. The workers are `bench.sansio.SansioWorker` (config `client`:
"sansio", the default) or `bench.worker.SimWorker` ("asyncio", websockets' asyncio client). Commands arrive
as JSON lines on stdin (`steady`, `saturate`, `finish`); the process answers each with a JSON line on
stdout (`paired`, `steady_done`, `saturate_done`, `finished`) and writes every worker's record to
`results_path` at the end. Workers arrive at `ramp_per_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.gcwatch import GcPauses
from bench.sansio import SansioWorker, heartbeats
from bench.worker import SimWorker, dumps, loads

CLIENTS: dict[str, type[SimWorker]] = {"sansio": SansioWorker, "asyncio": SimWorker}


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _next_command(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise SystemExit("the orchestrator went away")
    command: dict[str, Any] = loads(line)
    return command


def instance_of(worker_id: str) -> int:
    """The instance a worker was sent to, from its id (`...n<instance>`)."""
    return int(worker_id.rsplit("n", 1)[1])


def _worker(config: dict[str, Any], i: int) -> SimWorker:
    """The i-th worker of this process, sent to the instances in turn by its index across every process: one
    pair's two workers (who arrive one after the other) land on two different instances."""
    bases: list[str] = config["bases"]
    instance = (config["first"] + i) % len(bases)
    kind = CLIENTS[config.get("client", "sansio")]
    worker = kind(base=bases[instance], run_id=config["run_id"], worker_id=f"{config['prefix']}{i:05d}n{instance}")
    worker.instance = instance
    return worker


def _cross(worker: SimWorker) -> bool:
    """Whether this worker's partner (the one sender it heard from) was on another instance."""
    return len(worker.senders) == 1 and instance_of(next(iter(worker.senders))) != worker.instance


JOIN_CONNECTIONS = 64


async def main(config: dict[str, Any]) -> None:
    reader = await _commands()
    rng = random.Random(config.get("seed", 0))
    workers = [_worker(config, i) for i in range(config["count"])]
    cheap = [w for w in workers if isinstance(w, SansioWorker)]
    sweep = asyncio.create_task(heartbeats(cheap)) if cheap else None  # the asyncio workers ping on their own
    # No keep-alive: each worker is its own browser, and a reused connection can race the server closing it.
    limits = httpx.Limits(max_connections=JOIN_CONNECTIONS, max_keepalive_connections=0)
    # Joins wait for a connection here, not in httpx's pool: its pool scans every waiting request each time
    # one finishes, so a queue of thousands (the server a little slow, or a ramp faster than it) made the
    # client, not the server, the limit (PostgreSQL at 200 joins a second: the client at 85 % of a core in
    # that scan, the server at 21 %, joins 28 s late, heartbeats missed).
    slots = asyncio.Semaphore(JOIN_CONNECTIONS)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        start = time.monotonic()

        async def arrive(worker: SimWorker, at: float) -> bool:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            return await worker.arrive(http, slots)

        paired = await asyncio.gather(*(
            arrive(w, start + i / config["ramp_per_s"]) for i, w in enumerate(workers)
        ))
    live = [w for w, ok in zip(workers, paired, strict=True) if ok]
    quiet_gc = config.get("quiet_gc", True)
    if quiet_gc:  # what start-up and arrival made, out of the collector's way (before any measured phase)
        gc.collect()
        gc.freeze()
    _emit("paired", paired=len(live), failed=len(workers) - len(live))
    pauses = GcPauses()
    gc.callbacks.append(pauses)

    while True:
        command = await _next_command(reader)
        name = command["cmd"]
        if name == "steady":
            interval = command["interval"]
            with _measuring(pauses, quiet=quiet_gc):
                await asyncio.gather(*(
                    w.steady(command["start"], command["until"], interval, rng.random() * interval) for w in live
                ))
                figures = pauses.figures()  # before the collector runs again, after the phase
            _emit("steady_done", **figures)
        elif name == "saturate":
            with _measuring(pauses, quiet=quiet_gc):
                await asyncio.gather(*(w.saturate(command["until"]) for w in live))
                figures = pauses.figures()
            _emit("saturate_done", **figures)
        elif name == "finish":
            await asyncio.gather(*(w.finish() for w in live))
            for worker in workers:
                if worker not in live:
                    await worker.close()
            records = dumps({
                "workers": [w.result() for w in workers],
                "latencies": [t for w in workers for t in w.latencies],
                "cross_latencies": [t for w in workers if _cross(w) for t in w.latencies],
            })
            await asyncio.to_thread(Path(config["results_path"]).write_text, records)
            if sweep is not None:
                sweep.cancel()
            _emit("finished")
            return


@contextlib.contextmanager
def _measuring(pauses: GcPauses, *, quiet: bool) -> Iterator[None]:
    """A measured phase. With `quiet` the collector does not run in it: a client holding thousands of
    workers' objects pauses for tens of milliseconds per collection (more for a full one), and every
    latency it stamps meanwhile would carry the client's pause, not the server's (measured at 10,000
    workers: pauses up to 246 ms, 2.5 % of the steady phase). The phase's own garbage waits for its end."""
    pauses.reset()
    if quiet:
        gc.disable()
    try:
        yield
    finally:
        if quiet:
            gc.enable()


def run() -> None:
    config = loads(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(config))
    else:
        uvloop.run(main(config))


if __name__ == "__main__":
    run()
