"""The server's chat-line path alone, in one process: a quick, low-noise measure of its CPU per line.

`python -m bench.inproc [--workers 2000] [--seconds 10] [--rounds 3] [--postgres URL]` runs the bench task
(`bench.tasks:chat`) in a `Run` of this process, with fake pages instead of sockets: no kernel, no uvicorn,
no client, so what it measures is the part of a chat line that is Parley's own (frame parsing, the agent,
the channel, the world, the group commit and the database), and run-to-run noise is a few per cent where
the load bench's is 10-15 %. Each page answers its turn at once (the load bench's saturation phase): a
reader task per page takes the frame from a queue, parses it as the websocket route does, and hands it to
the run. Prints process CPU per delivered line (user + system, the checkpoint thread included) for each
round. Use it to compare two versions of the server path; quote the load bench (`python -m bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.gcwatch import GcPauses
from server.channel import dumps
from server.main import tune_gc
from server.protocol import JoinRequest, Say, parse_client_frame
from server.runner import Run
from server.settings import Settings
from server.store import Store
from server.tokens import TokenSigner

MAX_FRAME_BYTES = 64 * 1024


class FakePage:
    """A socket that reads nothing but what a worker needs: its turn, and its partner's lines (counted)."""

    def __init__(self, counter: list[int]) -> None:
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.agent_id = ""
        self.paired = asyncio.Event()
        self.chatting = False
        self._counter = counter
        self._sent = itertools.count()

    async def send_text(self, data: str) -> None:
        if '"type":"turn"' in data:
            if self.chatting:
                self.inbox.put_nowait(dumps({"type": "message", "client_id": f"c{next(self._sent)}", "text": "hi"}))
        elif '"mine":false' in data:
            self._counter[0] += 1
        elif '"state":"in_task"' in data:
            self.paired.set()

    async def close(self, code: int, reason: str) -> None:
        pass


async def _reader(run: Run, page: FakePage) -> None:
    """The websocket route's receive loop, without the socket: parse, then hand the line to the run."""
    while True:
        raw = await page.inbox.get()
        frame = parse_client_frame(raw, max_bytes=MAX_FRAME_BYTES)
        assert isinstance(frame, Say)
        await run.receive(page.agent_id, frame, page)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(workers: int, seconds: float, rounds: int, url: str) -> list[float]:
    from bench.tasks import chat

    store = Store(url)
    await store.drop_all()
    await store.open()
    task = chat()
    row = await store.ensure_run("inproc", task_module="bench.tasks:chat", options={})
    run = Run(row, task, store=store, signer=TokenSigner("k", 60), heartbeat_s=30)
    await run.start()
    counter = [0]
    pages = []
    for i in range(workers):
        agent = (await run.join(JoinRequest(assignment_id=f"A{i}", worker_id=f"W{i}"))).agent
        page = FakePage(counter)
        page.agent_id = agent.id
        await run.connect(agent.id, page, 0)
        pages.append(page)
    await asyncio.wait_for(asyncio.gather(*(p.paired.wait() for p in pages)), 120)
    readers = [asyncio.create_task(_reader(run, p)) for p in pages]
    gc.collect()
    for page in pages:  # the first lines: each page answers its open turn, then every turn that follows
        page.chatting = True
        page.inbox.put_nowait(dumps({"type": "message", "client_id": "first", "text": "hi"}))
    await asyncio.sleep(2.0)  # warm-up
    per_line = []
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    for _ in range(rounds):
        pauses.reset()
        cpu, lines, wall = _cpu(), counter[0], time.monotonic()
        await asyncio.sleep(seconds)
        cpu, lines, wall = _cpu() - cpu, counter[0] - lines, time.monotonic() - wall
        if lines == 0:
            raise RuntimeError(f"no line was delivered in {seconds} s: the run is stuck; see the log above")
        per_line.append(1e6 * cpu / lines)
        rate, busy = lines / wall, 100 * cpu / wall
        sys.stdout.write(f"{rate:8.0f} lines/s  {busy:5.1f} % CPU  {per_line[-1]:6.1f} us per line  "
                         f"{pauses.summary(wall)}\n")
        sys.stdout.flush()
    gc.callbacks.remove(pauses)
    for page in pages:
        page.chatting = False
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await run.stop()
    await store.close()
    return per_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (EMPTIED first); SQLite by default")
    args = parser.parse_args(argv)
    tune_gc(Settings().gc_thresholds)  # as the server does at start-up
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        uvloop = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite+aiosqlite:///{Path(tmp) / 'inproc.db'}"
        runner: Any = uvloop.run if uvloop is not None else asyncio.run
        per_line = runner(measure(args.workers, args.seconds, args.rounds, url))
    per_line.sort()
    sys.stdout.write(f"median {per_line[len(per_line) // 2]:.1f} us per line\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
