"""The websocket close codes Parley sends, named once. The page gets them, with what it should do, from
`describe_close_codes()` (in `TaskInfo.close_codes`), as it gets state names from `describe_states()`.

4000-4999 are Parley's own (RFC 6455 leaves them to applications); 1011-1013 are the standard ones.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    SERVER_ERROR = 1011  # a send failed, or events the page needs are not stored: reconnect and resume
    MOVED = 1012  # service restart: the run moved to another process or instance; reconnect and resume
    TRY_AGAIN_LATER = 1013  # no instance serves the run yet (a takeover in progress): reconnect with backoff
    BAD_FRAME = 4400  # a first frame that is not a valid hello, or a resume ahead of the stream
    TOKEN_INVALID = 4401  # the token is invalid or expired (the page may join again once for a fresh one)
    FORBIDDEN = 4403  # not this agent's, or a cap refuses the worker
    UNKNOWN_RUN = 4404  # the run is not served (admin live view)
    SILENT = 4408  # no frame for three heartbeats
    REPLACED = 4409  # a newer connection for this assignment took over


# Closes after which the page must not reconnect: it shows this text and stops.
FINAL_TEXT: dict[CloseCode, str] = {
    CloseCode.BAD_FRAME: "The page and the server do not understand each other. Please reload this page.",
    CloseCode.TOKEN_INVALID: "Your session is no longer valid. Please reload this page.",
    CloseCode.FORBIDDEN: "This page is not allowed to join this conversation.",
    CloseCode.REPLACED: (
        "This task was opened in another tab or window. Please continue there; this page has stopped."
    ),
}


def describe_close_codes() -> dict[str, dict[str, object]]:
    """{name: {"code", "final", "text"}} for the page: `final` closes are not retried."""
    return {
        code.name.lower(): {"code": int(code), "final": code in FINAL_TEXT, "text": FINAL_TEXT.get(code, "")}
        for code in CloseCode
    }
