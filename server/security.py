"""Security headers. The task page may be framed only by MTurk's worker sites (and this app, for the
built-in sandbox); every other page only by this app. Worker text is rendered with textContent, and the
CSP forbids inline and foreign scripts on Parley's own pages as a second line of defence."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MTURK_FRAMERS = "https://worker.mturk.com https://workersandbox.mturk.com https://www.mturk.com"
MTURK_SUBMIT = "https://www.mturk.com https://workersandbox.mturk.com"

TASK_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
    f"form-action 'self' {MTURK_SUBMIT}; frame-ancestors 'self' {MTURK_FRAMERS}"
)
OTHER_CSP = "frame-ancestors 'self'; object-src 'none'; base-uri 'self'"


class SecurityHeaders:
    """Pure ASGI middleware (no buffering; websockets pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = TASK_PAGE_CSP if path.startswith(("/task/", "/static/")) else OTHER_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", csp.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
