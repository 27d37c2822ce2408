"""How uvicorn serves Parley: one set of options for every way Parley is started, so that none can drift.

`parley serve` and `parley run` call `uvicorn.run(..., **uvicorn_options(settings))`; `make run`, the
container and the test and benchmark processes start `python -m server.serving`, which does the same.

- `ws_max_size`: the transport refuses a websocket message over twice the protocol's frame limit (close
  1009) before holding it in memory. A frame between the two limits still gets Parley's own
  `frame_too_large` error frame and the socket stays open; the page never sends a frame over the limit.
- `timeout_keep_alive`: an idle kept-alive HTTP connection is closed after this many seconds.
- `HANDSHAKE_TIMEOUT_S`: a connection that has not sent a whole request head (request line and headers) this
  long after it opened or started its request is closed (`BoundedHttp`): a silent or trickling client
  holds no connection for longer. Once a websocket is open, the hello and heartbeat limits take over.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.settings import Settings

HANDSHAKE_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5


def ws_max_size(settings: Settings) -> int:
    return 2 * settings.max_frame_bytes


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`, besides the app, host and port."""
    return {
        "http": BoundedHttp,
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,  # chat frames are small: compressing them costs CPU and ~40 KB a socket
        "ws_max_size": ws_max_size(settings),
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a time limit on receiving each request's head."""

    _handshake: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._handshake is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._handshake = self.loop.call_later(HANDSHAKE_TIMEOUT_S, self._handshake_expired)

    def _disarm(self) -> None:
        if self._handshake is not None:
            self._handshake.cancel()
            self._handshake = None

    def _handshake_expired(self) -> None:
        self._handshake = None
        if not self.transport.is_closing():
            self.transport.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m server.serving`: serve an app (Parley's by default) with Parley's uvicorn options."""
    parser = argparse.ArgumentParser(prog="python -m server.serving", description=main.__doc__)
    parser.add_argument("--app", default="server.main:app", help="the ASGI app, as module:attribute")
    parser.add_argument("--factory", action="store_true", help="--app names a function that builds the app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--proxy-headers", action="store_true",
                        help="trust X-Forwarded-* from any address (behind the HTTPS proxy), not only 127.0.0.1")
    parser.add_argument("--ws", help="another uvicorn websocket implementation (the benchmark compares them)")
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--log-level", default=None)
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--ws-per-message-deflate", action="store_true", help="compress websocket frames")
    args = parser.parse_args(argv)
    options = uvicorn_options(Settings())
    if args.ws:
        options["ws"] = args.ws
    if args.ws_per_message_deflate:
        options["ws_per_message_deflate"] = True
    if args.proxy_headers:
        options["forwarded_allow_ips"] = "*"
    uvicorn.run(
        args.app, factory=args.factory, host=args.host, port=args.port, loop=args.loop, log_level=args.log_level,
        backlog=args.backlog, access_log=not args.no_access_log, **options,
    )


if __name__ == "__main__":
    main()
