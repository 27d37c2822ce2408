"""The review dashboard: `/admin` (page), `/admin/api` (JSON), `/admin/live/{run}` (websocket), `/metrics`.

`install_admin(app, settings)` is the one call main.py makes. Its imports are inside it, so that importing
`server.admin.auth` does not pull in the routes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.settings import Settings

ADMIN_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def install_admin(app: FastAPI, settings: Settings) -> None:
    from server.admin import live, metrics, routes
    from server.admin.actions import ReviewRefused
    from server.admin.auth import AdminRefused
    from server.errors import error_response

    if getattr(app.state, "admin_hub", None) is not None:
        return  # installed already
    app.state.admin_hub = live.Hub()

    @app.exception_handler(AdminRefused)
    async def refused(_request: Request, exc: AdminRefused) -> JSONResponse:
        reply = error_response(exc.status, exc.code, exc.message)
        if exc.retry_after is not None:
            reply.headers["Retry-After"] = str(exc.retry_after)
        return reply

    @app.exception_handler(ReviewRefused)
    async def review_refused(_request: Request, exc: ReviewRefused) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    app.include_router(routes.page)
    app.include_router(routes.session)
    app.include_router(routes.api)
    app.include_router(live.router)
    app.include_router(metrics.router)
    app.add_middleware(AdminHeaders)


class AdminHeaders:
    """Admin responses: never framed, never cached, scripts and styles from this origin only.

    Its policy replaces any other Content-Security-Policy on these paths, whatever the middleware order.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/admin" or path.startswith(("/admin/", "/metrics"))):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                replaced = {b"content-security-policy", b"x-frame-options", b"cache-control"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replaced]
                headers += [
                    (b"content-security-policy", ADMIN_CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["install_admin"]
