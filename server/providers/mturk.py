"""MTurk's requester API through boto3 (live, MTurk's sandbox, or any endpoint: the built-in sandbox). MTurk
behind the provider seam, built on the HIT manager, is `server/hits/provider.py`.

boto3 is synchronous. Every call goes through one helper, `MTurk.call`, which runs it off the event loop
with `asyncio.to_thread`, bounds the wait, translates botocore's exceptions into one `MTurkError`, and
retries throttling and transient failures by the providers' one policy (server/providers/retry.py).
Nothing else in Parley imports boto3.

Credentials come from the standard AWS chain (environment, shared files, instance role). Only for the
built-in sandbox, which accepts any signature, does Parley supply dummy static credentials, so a developer
machine with real keys never sends them to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from server.providers.retry import ProviderError, Retry, retried
from server.states import HitStatus

log = logging.getLogger(__name__)
WORKED_ON = (HitStatus.TAKEN, HitStatus.SUBMITTED, HitStatus.REVIEWED)  # a worker took the HIT

LIVE_ENDPOINT = "https://mturk-requester.us-east-1.amazonaws.com"
SANDBOX_ENDPOINT = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
REGION = "us-east-1"

# Error codes worth another try: MTurk's throttling, AWS's generic ones, and server-side faults.
TRANSIENT_CODES = frozenset({
    "ServiceFault", "ServiceUnavailable", "InternalError", "InternalFailure", "Throttling", "ThrottlingException",
    "TooManyRequestsException", "RequestLimitExceeded", "AWS.MechanicalTurk.RequestThrottled",
    "AWS.MechanicalTurk.ServiceUnavailable",
})


class MTurkError(ProviderError):
    """A refused or failed MTurk call. `code` is MTurk's TurkErrorCode when it sent one."""

    def __init__(self, operation: str, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message
        self.transient = transient


def endpoint_for(provider: str, *, public_url: str, endpoint_url: str = "") -> str:
    """Where the requester API is: an explicit endpoint wins, else the provider's."""
    if endpoint_url:
        return endpoint_url
    if provider == "live":
        return LIVE_ENDPOINT
    if provider == "sandbox":
        return SANDBOX_ENDPOINT
    return public_url.rstrip("/") + "/sandbox/mturk"


def account_key(endpoint: str) -> str:
    """A short name for the MTurk account behind an endpoint: records are never mixed across accounts."""
    if endpoint == LIVE_ENDPOINT:
        return "live"
    if endpoint == SANDBOX_ENDPOINT:
        return "sandbox"
    if endpoint.rstrip("/").endswith("/sandbox/mturk"):
        return "builtin"
    return endpoint


class MTurk:
    """One requester account. `await mturk.call("GetHIT", HITId=...)` returns MTurk's response dict."""

    def __init__(self, client: Any, *, endpoint: str, retry: Retry | None = None) -> None:
        self._client = client
        self.endpoint = endpoint
        self.account = account_key(endpoint)
        self.retry = retry or Retry()

    @classmethod
    def connect(cls, endpoint: str, *, builtin: bool = False, retry: Retry | None = None) -> MTurk:
        return cls(_client(endpoint, builtin=builtin), endpoint=endpoint, retry=retry)

    def retarget(self, endpoint: str) -> None:
        """Talk to the built-in sandbox at another address (another process on the data directory serves
        it now). Only between built-in endpoints: records are never mixed across accounts."""
        if endpoint == self.endpoint:
            return
        if account_key(endpoint) != self.account:
            raise ValueError(f"cannot move MTurk calls from account {self.account} to {account_key(endpoint)}")
        log.info("MTurk calls go to the built-in sandbox at %s now", endpoint)
        self._client, self.endpoint = _client(endpoint, builtin=True), endpoint

    @property
    def is_live(self) -> bool:
        return self.account == "live"

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """The one way Parley calls MTurk: off the loop, bounded, retried with backoff when transient."""
        method: Callable[..., dict[str, Any]] = getattr(self._client, xform_name(operation))

        async def attempt() -> dict[str, Any]:
            try:
                async with asyncio.timeout(self.retry.call_timeout_s):  # never drops a shutdown's cancel
                    return await asyncio.to_thread(method, **params)
            except (ClientError, BotoCoreError, TimeoutError) as exc:
                raise _translate(operation, exc) from None

        return await retried(f"MTurk {operation}", attempt, self.retry)

    async def pages(self, operation: str, key: str, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paginated list operation (ListHITs, ListAssignmentsForHIT, ...)."""
        token: str | None = None
        while True:
            extra = {"NextToken": token} if token else {}
            page = await self.call(operation, MaxResults=100, **params, **extra)
            for item in page.get(key, []):
                yield item
            token = page.get("NextToken")
            if not token or not page.get(key):
                return


def _client(endpoint: str, *, builtin: bool) -> Any:
    # Parley retries itself (below), so botocore's own retries are off: one policy, one place.
    config = Config(
        retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=20, max_pool_connections=20,
    )
    dummy = {"aws_access_key_id": "parley-builtin", "aws_secret_access_key": "parley-builtin"} if builtin else {}
    return boto3.session.Session().client("mturk", region_name=REGION, endpoint_url=endpoint, config=config, **dummy)


def _translate(operation: str, exc: Exception) -> MTurkError:
    if isinstance(exc, ClientError):
        response: dict[str, Any] = exc.response
        error = response.get("Error", {})
        code = str(response.get("TurkErrorCode") or error.get("Code") or "Unknown")
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        transient = code in TRANSIENT_CODES or str(error.get("Code")) in TRANSIENT_CODES or status >= 500
        return MTurkError(operation, code, str(error.get("Message") or exc), transient=transient)
    if isinstance(exc, TimeoutError):
        return MTurkError(operation, "Timeout", "no answer in time", transient=True)
    transient = isinstance(exc, ConnectionError | HTTPClientError)
    return MTurkError(operation, type(exc).__name__, str(exc), transient=transient)
