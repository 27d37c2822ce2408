"""Prolific's REST API v1 over httpx: `Authorization: Token ...`, bounded waits, retries where safe.

Every call goes through `ProlificApi.call`. A call is retried, with exponential backoff and full jitter,
when Prolific did not act on it: a 429 (rate limited; `Retry-After` is honoured) or a connection that was
never made. A 5xx or a timeout after the request went out is retried only for calls that are safe to
repeat (`idempotent=True`: reads, setting a study's places, transitions); creating a study or a bonus and
paying a bonus are not, and their callers recover through Parley's records instead (server/providers/prolific.py).
Prolific's errors (`{"error": {"status", "error_code", "title", "detail"}}`) become one `ProlificError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)


class ProlificError(Exception):
    """A refused or failed Prolific call. `transient`: trying again later may work."""

    def __init__(self, what: str, status: int, title: str, detail: Any, *, transient: bool = False) -> None:
        super().__init__(f"{what}: {status} {title}: {detail}")
        self.what = what
        self.status = status
        self.title = title
        self.detail = detail
        self.transient = transient


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 8.0
    connect_s: float = 5.0
    read_s: float = 20.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_s)
        return random.uniform(0, min(self.max_s, self.base_s * 2**attempt))


class ProlificApi:
    """`await api.call("GET", "/studies/")` returns Prolific's decoded JSON (None for an empty body)."""

    def __init__(
        self, base_url: str, token: str, *, retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or Retry()
        timeout = httpx.Timeout(self.retry.read_s, connect=self.retry.connect_s)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        safe = method == "GET" if idempotent is None else idempotent
        what = f"{method} {path}"
        for attempt in range(self.retry.attempts):
            retry_after: str | None = None
            try:
                reply = await self._http.request(method, path, json=json, params=params)
            except httpx.ConnectError as exc:  # never reached Prolific: always safe to repeat
                error = ProlificError(what, 0, "Unreachable", str(exc) or type(exc).__name__, transient=True)
            except httpx.TransportError as exc:  # sent, answer lost: Prolific may have acted
                error = ProlificError(what, 0, "No answer", str(exc) or type(exc).__name__, transient=safe)
            else:
                if reply.status_code < 400:
                    return reply.json() if reply.content else None
                error = _error(what, reply, safe)
                retry_after = reply.headers.get("retry-after")
            if not error.transient or attempt == self.retry.attempts - 1:
                raise error
            delay = self.retry.delay(attempt, retry_after)
            log.warning("Prolific %s failed (%s %s); retry %d in %.2fs", what, error.status, error.title,
                        attempt + 1, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def pages(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated list (`results`, then `_links.next.href` until there is none)."""
        items: list[dict[str, Any]] = []
        page = await self.call("GET", path, params=params)
        while True:
            items.extend(page.get("results", []))
            following = ((page.get("_links") or {}).get("next") or {}).get("href")
            if not following:
                return items
            page = await self.call("GET", str(following))


def _error(what: str, reply: httpx.Response, safe: bool) -> ProlificError:
    try:
        body = reply.json().get("error", {})
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {"detail": body}
    status = reply.status_code
    transient = status == 429 or (status >= 500 and safe)
    return ProlificError(
        what, status, str(body.get("title") or reply.reason_phrase), body.get("detail") or reply.text[:500],
        transient=transient,
    )
