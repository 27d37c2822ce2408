"""Refuse a request whose path or query carries a NUL (`%00`) before any route sees it.

Parley stores no text with NUL in it (see `server/protocol.py`), and a path parameter or query value is
text that reaches the store's queries (PostgreSQL cannot even compare with it). Percent-decoding makes no
unpaired surrogates (the server decodes invalid UTF-8 as U+FFFD), so NUL is the one character to refuse
here; JSON bodies are checked by their models (`StoredText`).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

NUL_MESSAGE = "The address contains a NUL character (%00), which no Parley address has. Check the link."


class NulGuard:
    """Pure ASGI middleware: 400 `bad_text` for a NUL in the path or the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            reply = JSONResponse({"error": {"code": "bad_text", "message": NUL_MESSAGE}}, status_code=400)
            await reply(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query
