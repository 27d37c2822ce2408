"""The admin credential: `PARLEY_ADMIN_TOKEN`, sent as a bearer token (scripts, Prometheus) or held in a
session cookie set by logging in on the dashboard. No token configured, no access: every admin path refuses.

The cookie holds an HMAC of the token, never the token itself; it is HttpOnly and SameSite=Strict, so
another site can neither read it nor make the browser send it with a forged request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from server.settings import Settings

COOKIE = "parley_admin"
SESSION_MAX_AGE_S = 12 * 3600


class AdminRefused(Exception):
    """No or a wrong admin credential: 401, or 403 when the server has no admin token at all."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def session_value(admin_token: str) -> str:
    return hmac.new(admin_token.encode(), b"parley-admin-session-v1", hashlib.sha256).hexdigest()


def token_matches(settings: Settings, candidate: str) -> bool:
    return bool(settings.admin_token) and hmac.compare_digest(candidate.encode(), settings.admin_token.encode())


def check_admin(settings: Settings, headers: Mapping[str, str], cookies: Mapping[str, str]) -> None:
    """Raise AdminRefused unless the request carries the admin credential."""
    if not settings.admin_token:
        raise AdminRefused(
            403, "admin_disabled", "The admin dashboard is off: set PARLEY_ADMIN_TOKEN on the server to turn it on."
        )
    scheme, _, bearer = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(settings, bearer.strip()):
        return
    cookie = cookies.get(COOKIE, "")
    if cookie and hmac.compare_digest(cookie.encode(), session_value(settings.admin_token).encode()):
        return
    raise AdminRefused(401, "unauthorized", "Log in with the admin token to use this page.")


async def require_admin(connection: HTTPConnection) -> None:
    settings: Settings = connection.app.state.settings
    check_admin(settings, connection.headers, connection.cookies)


Admin = Annotated[None, Depends(require_admin)]
