"""A run in the test's own process, with fake sockets: for tests of the runner without a server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from server.protocol import JoinRequest
from server.runner import Run
from server.store import Store
from server.tokens import TokenSigner
from worlds.base import Task


class Page:
    """A fake socket that records frames and lets a test wait for one."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.closed: int | None = None

    async def send_text(self, data: str) -> None:
        self.frames.append(json.loads(data))
        self.arrived.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed = code

    @property
    def last_seq(self) -> int:
        return max((f["seq"] for f in self.frames if "seq" in f), default=0)

    async def wait(self, kind: str, **match: Any) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for f in self.frames:
                    if f["type"] == kind and all(f.get(k) == v for k, v in match.items()):
                        return f
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), 5)


async def start_run(store: Store, task: Task) -> Run:
    row = await store.ensure_run("r", task_module="tests.support.tasks:chat", options={})
    run = Run(row, task, store=store, signer=TokenSigner("k", 60), heartbeat_s=5)
    await run.start()
    return run


async def arrive(run: Run, worker: str) -> tuple[str, Page]:
    agent = (await run.join(JoinRequest(assignment_id=f"A-{worker}", worker_id=worker))).agent
    page = Page()
    await run.connect(agent.id, page, 0)
    return agent.id, page
