"""The admin credential: `PARLEY_ADMIN_TOKEN`, sent as a bearer token (scripts, Prometheus) or held in a
session cookie set by logging in on the dashboard. No token configured, no access: every admin path refuses
(a server listening on loopback only makes a local token at start-up: `server.admin.local_token`).

The cookie holds a random session id, never the token; the session is a row in the database
(`server.store.admin_sessions`), so logging out revokes the cookie for good, on every instance. The cookie
is HttpOnly and SameSite=Strict, so another site can neither read it nor make the browser send it with a
forged request. Wrong tokens (a login or a bearer) are throttled per client address and overall
(`server.admin.throttle`): a throttled attempt is refused with 429 before its token is compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import time
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from server.admin.throttle import LoginThrottle
from server.settings import Settings
from server.store import Store
from server.store.admin_sessions import AdminSessions

COOKIE = "parley_admin"
SESSION_MAX_AGE_S = 12 * 3600


class AdminRefused(Exception):
    """No or a wrong admin credential: 401, 403 when the server has no admin token, 429 when throttled."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def token_mark(admin_token: str) -> str:
    """Which admin token a session was opened with (a new token closes the old sessions)."""
    return hmac.new(admin_token.encode(), b"parley-admin-session-v2", hashlib.sha256).hexdigest()[:16]


def _disabled() -> AdminRefused:
    return AdminRefused(
        403, "admin_disabled",
        "The review dashboard is off: this server has no admin token. Start it with PARLEY_ADMIN_TOKEN set, or "
        "listening on 127.0.0.1 only (as `make run` does), where it makes a token and logs a login link.",
    )


def token_matches(settings: Settings, candidate: str) -> bool:
    return bool(settings.admin_token) and hmac.compare_digest(candidate.encode(), settings.admin_token.encode())


def _throttle(connection: HTTPConnection) -> LoginThrottle:
    state = connection.app.state
    if getattr(state, "admin_throttle", None) is None:
        state.admin_throttle = LoginThrottle()
    throttle: LoginThrottle = state.admin_throttle
    return throttle


def _address(connection: HTTPConnection) -> str:
    """The client address throttled as one: an IPv4 address, or an IPv6 /64 (one host's usual allocation)."""
    host = connection.client.host if connection.client else "unknown"
    if ":" in host:
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_network(f"{host}/64", strict=False))
    return host


def check_token(connection: HTTPConnection, candidate: str, *, refusal: str) -> None:
    """Compare a presented admin token, unless this client is throttled; count it when wrong."""
    settings: Settings = connection.app.state.settings
    if not settings.admin_token:
        raise _disabled()
    throttle, address = _throttle(connection), _address(connection)
    wait = throttle.retry_after(address)
    if wait:
        raise AdminRefused(
            429, "too_many_attempts",
            f"Too many wrong admin tokens: try again in {wait} s.", retry_after=wait,
        )
    if not token_matches(settings, candidate):
        throttle.failed(address)
        raise AdminRefused(401, "unauthorized", refusal)


def _sessions(connection: HTTPConnection) -> AdminSessions:
    store: Store = connection.app.state.store
    return AdminSessions(store)


async def open_session(connection: HTTPConnection) -> str:
    """A new session id for the cookie, valid for SESSION_MAX_AGE_S or until logged out."""
    settings: Settings = connection.app.state.settings
    session_id, now = secrets.token_urlsafe(32), time.time()
    await _sessions(connection).open(
        session_id, until=now + SESSION_MAX_AGE_S, token_mark=token_mark(settings.admin_token), now=now
    )
    return session_id


async def close_session(connection: HTTPConnection) -> None:
    session_id = connection.cookies.get(COOKIE, "")
    if session_id:
        await _sessions(connection).close(session_id)


async def check_admin(connection: HTTPConnection) -> None:
    """Raise AdminRefused unless the request carries the admin credential."""
    settings: Settings = connection.app.state.settings
    scheme, _, bearer = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        check_token(connection, bearer.strip(), refusal="That is not the admin token.")
        return
    if not settings.admin_token:
        raise _disabled()
    session_id = connection.cookies.get(COOKIE, "")
    mark = token_mark(settings.admin_token)
    if session_id and await _sessions(connection).is_open(session_id, token_mark=mark, now=time.time()):
        return
    raise AdminRefused(401, "unauthorized", "Log in with the admin token to use this page.")


async def require_admin(connection: HTTPConnection) -> None:
    await check_admin(connection)


Admin = Annotated[None, Depends(require_admin)]
