"""A real Parley server with the built-in sandbox and the HIT manager, in a thread or a subprocess."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from server.hits import HitManager
from server.settings import Settings
from tests.sandbox.helpers import accept_as_async, turk_submit_to
from tests.support.client import Frame, JoinRefused, Worker
from tests.support.server import LiveServer
from tests.support.server import serve as serve_live

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class HitServer(LiveServer):
    """A live server whose app runs the HIT manager against its own built-in sandbox."""

    @property
    def endpoint(self) -> str:
        return f"{self.base}/sandbox/mturk"

    @property
    def hits(self) -> HitManager:
        manager: HitManager = self.app.state.hits
        return manager


def settings_for(tmp_path: Path, db_url: str, runs: dict[str, str], **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path, "database_url": db_url, "demo_runs": runs, "log_level": "WARNING",
        "heartbeat_s": 5.0, "mturk_sync_s": 0.3, "mturk_publish": list(runs), **extra,
    }
    return Settings(**values)


@contextmanager
def serve(settings: Settings) -> Iterator[HitServer]:
    with serve_live(settings) as live:
        yield HitServer(app=live.app, port=live.port, settings=live.settings)


def mturk(endpoint: str) -> Any:
    """boto3 against the built-in sandbox, with dummy credentials. A request that finds its pooled connection
    reset (the server closing it as idle the moment it is reused) is tried again, as any boto3 client does;
    the sandbox's answers themselves (its 400 errors) are never retried (botocore's standard mode)."""
    return boto3.client(
        "mturk", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}, read_timeout=20),
    )


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, what: str = "condition") -> Any:
    """Wait until `check()` returns something truthy, with a bound (re-checked every 50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def open_hits(client: Any, run_id: str) -> list[dict[str, Any]]:
    hits = []
    token: str | None = None
    while True:
        page = client.list_hits(MaxResults=100, **({"NextToken": token} if token else {}))
        hits += page["HITs"]
        token = page.get("NextToken")
        if not token or not page["HITs"]:
            break
    return [
        h for h in hits
        if h.get("RequesterAnnotation") == run_id and h["HITStatus"] == "Assignable"
        and h["NumberOfAssignmentsAvailable"] > 0
    ]


class TurkWorker(Worker):
    """A worker who accepts a HIT on the sandbox's worker site, then joins with MTurk's parameters.

    Its cookie jar is its browser: the worker id it picks on the worker site is bound to it."""

    def __init__(self, base: str, run_id: str, worker_id: str) -> None:
        super().__init__(base, run_id, worker_id)
        self.hit_id = ""
        self.turk_submit_to = ""
        self.cookies = httpx.Cookies()

    def _site(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=10, cookies=self.cookies)

    async def accept(self, hit_id: str) -> None:
        async with self._site() as http:
            reply = await accept_as_async(http, self.worker_id, hit_id)
            self.cookies = http.cookies
        if reply.status_code != 200:
            raise JoinRefused(reply.status_code, reply.json())
        self.assignment_id, self.hit_id = reply.json()["assignment_id"], hit_id
        self.turk_submit_to = turk_submit_to(reply.json()["url"])

    async def visible_hits(self) -> set[str]:
        """The HIT ids the worker site lists for this worker."""
        async with self._site() as http:
            picked = await http.post("/sandbox/worker/session", json={"worker_id": self.worker_id})
            assert picked.status_code == 200, picked.text
            reply = await http.get("/sandbox/worker/hits", params={"worker_id": self.worker_id})
            self.cookies = http.cookies
        return {hit["hit_id"] for hit in reply.json()["hits"]}

    async def join(self) -> Frame:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            reply = await http.post(f"/task/{self.run_id}/join", json={
                "assignment_id": self.assignment_id, "hit_id": self.hit_id, "worker_id": self.worker_id,
                "turk_submit_to": self.turk_submit_to,
                **({"resume_key": self.resume_key} if self.resume_key else {}),
            })
        body = reply.json()
        if reply.status_code != 200:
            raise JoinRefused(reply.status_code, body)
        self.token, self.agent_id, self.resume_key = body["token"], body["agent_id"], body["resume_key"]
        return dict(body)

    async def submit(self, **answers: str) -> None:
        """What the page does when done: a submit frame, then MTurk's form post to turkSubmitTo."""
        await self.send({"type": "submit"})
        await self.wait_state("submitted")
        async with httpx.AsyncClient(timeout=10) as http:  # the page's form post: no worker-site cookie
            form = {"assignmentId": self.assignment_id, **answers}
            reply = await http.post(f"{self.turk_submit_to}/mturk/externalSubmit", data=form)
        assert reply.status_code == 200, reply.text

    async def return_hit(self) -> None:
        async with self._site() as http:
            reply = await http.post("/sandbox/worker/return", json={"assignment_id": self.assignment_id})
        assert reply.status_code == 200, reply.text
