"""Any instance serves the built-in MTurk sandbox: it forwards a sandbox request to the instance that holds it.

The sandbox's state is one file in the data directory, served by the one process that holds its lock
(`server/sandbox/core.py`). Behind a load balancer a worker's browser or a requester's boto3 may reach any
instance, so a request for `/sandbox/...` that lands on a process not holding the sandbox (`HeldElsewhere`)
is sent on over HTTP to the live instance whose `instance` row says `sandbox` (its `url`), and the answer
comes back as it was given: status, headers (cookies among them), body, streamed both ways.

The original `Host` is kept, so links the sandbox builds from the request (a HIT's `turkSubmitTo`) name the
address the worker used, not the holder's own. A request is forwarded at most once (`x-parley-forwarded-by`):
two instances that each think the other holds the sandbox answer 503 rather than bounce it between them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from server.errors import error_response
from server.sandbox.core import HeldElsewhere
from server.store.leases import InstanceRow, LeaseStore

log = logging.getLogger(__name__)

FORWARDED_BY = "x-parley-forwarded-by"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
# Meaningful for one connection only (RFC 9110 7.6.1), or rewritten below.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "forwarded",
})
# Headers this process's own server and middleware add to every answer: the holder's copies are dropped so
# that none appears twice.
_ADDED_HERE = frozenset({b"date", b"server", b"x-content-type-options", b"referrer-policy"})
_HOP_BY_HOP_REPLY = frozenset(name.encode() for name in _HOP_BY_HOP)


def install_sandbox_proxy(app: FastAPI) -> None:
    """Forward sandbox requests this process cannot serve to the instance that serves the sandbox."""
    app.add_exception_handler(HeldElsewhere, forward_to_holder)


async def forward_to_holder(request: Request, exc: Exception) -> Response:
    ownership = request.app.state.ownership
    if request.headers.get(FORWARDED_BY):
        return _unavailable(
            f"{exc}: it was forwarded here by instance {request.headers[FORWARDED_BY]}, which this instance "
            "does not take for the sandbox's holder either. Retry in a few seconds."
        )
    holder = await _holder(LeaseStore(request.app.state.store), own_id=ownership.id)
    if holder is None:
        return _unavailable(
            "The built-in MTurk sandbox of this data directory is served by no live Parley instance just now "
            "(its holder may have just stopped; another takes it over at its next pass). Retry in a few seconds."
        )
    return await _forward(request, holder, own_id=ownership.id)


async def _holder(leases: LeaseStore, *, own_id: str) -> InstanceRow | None:
    """The live instance that serves the sandbox, the most recently seen if rows disagree."""
    others = [row for row in await leases.live_instances(time.time()) if row.sandbox and row.id != own_id]
    return max(others, key=lambda row: row.seen_until, default=None)


async def _forward(request: Request, holder: InstanceRow, *, own_id: str) -> Response:
    url = holder.url.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = [(name, value) for name, value in request.headers.items() if name not in _HOP_BY_HOP]
    headers += [
        ("x-forwarded-for", request.client.host if request.client else ""),
        ("x-forwarded-proto", request.url.scheme),
        (FORWARDED_BY, own_id),
    ]
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S), trust_env=False, follow_redirects=False,
    )
    upstream = client.build_request(
        request.method, url, headers=headers, content=request.stream() if has_body else None
    )
    try:
        reply = await client.send(upstream, stream=True)
    except httpx.HTTPError as error:
        await client.aclose()
        log.warning("sandbox request %s %s: its holder %s at %s failed: %r",
                    request.method, request.url.path, holder.id, holder.url, error)
        return _unavailable(
            f"The built-in MTurk sandbox is served by instance {holder.id} at {holder.url}, which did not "
            f"answer ({type(error).__name__}). If it has stopped, another instance takes the sandbox over within "
            "seconds: retry then."
        )
    answer = StreamingResponse(_relay(reply, client), status_code=reply.status_code)
    answer.raw_headers = [
        (name, value) for name, value in reply.headers.raw
        if name.lower() not in _HOP_BY_HOP_REPLY and name.lower() not in _ADDED_HERE
    ]
    return answer


async def _relay(reply: httpx.Response, client: httpx.AsyncClient) -> AsyncIterator[bytes]:
    """The holder's body as it arrives, undecoded (its Content-Encoding is passed on); closed however it ends."""
    try:
        async for chunk in reply.aiter_raw():
            yield chunk
    finally:
        await reply.aclose()
        await client.aclose()


def _unavailable(message: str) -> Response:
    return error_response(503, "unavailable", message)
