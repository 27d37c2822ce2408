"""Prolific's REST API v1 over httpx: `Authorization: Token ...`, bounded waits, retries where safe.

Every call goes through `ProlificApi.call`, retried by the providers' one policy (server/providers/retry.py:
backoff with full jitter, Prolific's `Retry-After` honoured) when Prolific did not act on it: a 429 (rate
limited) or a connection that was never made. A 5xx or a timeout after the request went out is retried only
for calls that are safe to repeat (`idempotent=True`: reads, setting a study's places, transitions);
creating a study or a bonus and paying a bonus are not, and their callers recover through Parley's records
instead (server/providers/prolific.py).
Prolific's errors (`{"error": {"status", "error_code", "title", "detail"}}`) become one `ProlificError`.
"""

from __future__ import annotations

from typing import Any

import httpx

from server.providers.retry import ProviderError, Retry, retried

__all__ = ["ProlificApi", "ProlificError", "Retry"]


class ProlificError(ProviderError):
    """A refused or failed Prolific call. `transient`: trying again later may work."""

    def __init__(
        self, what: str, status: int, title: str, detail: Any, *, transient: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(f"{what}: {status} {title}: {detail}")
        self.what = what
        self.status = status
        self.title = title
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after


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

        async def attempt() -> Any:
            try:
                reply = await self._http.request(method, path, json=json, params=params)
            except httpx.ConnectError as exc:  # never reached Prolific: always safe to repeat
                raise ProlificError(what, 0, "Unreachable", str(exc) or type(exc).__name__, transient=True) from None
            except httpx.TransportError as exc:  # sent, answer lost: Prolific may have acted
                raise ProlificError(what, 0, "No answer", str(exc) or type(exc).__name__, transient=safe) from None
            if reply.status_code >= 400:
                raise _error(what, reply, safe)
            return reply.json() if reply.content else None

        return await retried(f"Prolific {what}", attempt, self.retry)

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
        transient=transient, retry_after=reply.headers.get("retry-after"),
    )
