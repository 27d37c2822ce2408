"""Every websocket frame and HTTP body, as typed models, both directions. Versioned by PROTOCOL_VERSION.

The no-loss rules (docs/protocol.md):
- a client message carries a `client_id`; the server stores it, then acks it, then delivers it;
- each agent's outbound stream has gap-free sequence numbers starting at 1 (`seq`);
- `hello.last_seq` resumes: the server replays every event with a greater seq, in order, then goes live;
- a resent client message (same client_id) is acked again with the same message id, never stored twice.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 2  # 2: the echo is a message's ack; turns are live frames, not stored events

ClientId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- client -> server -------------------------------------------------------------------------


class Hello(_Frame):
    """First frame on every socket: who I am and the last seq I have seen (0 for none)."""

    type: Literal["hello"]
    v: int = PROTOCOL_VERSION
    token: str = Field(min_length=1, max_length=1024)
    last_seq: int = Field(default=0, ge=0, le=2**53)


class Say(_Frame):
    """A worker's act: chat text and/or structured answers (rating, choices, survey fields)."""

    type: Literal["message"]
    client_id: ClientId
    text: str = Field(default="", max_length=100_000)
    data: dict[str, Any] = Field(default_factory=dict)


class Ping(_Frame):
    type: Literal["ping"]


class Submit(_Frame):
    """Sent by the page just before it posts the MTurk form."""

    type: Literal["submit"]


ClientFrame = Annotated[Hello | Say | Ping | Submit, Field(discriminator="type")]
_client_adapter: TypeAdapter[Hello | Say | Ping | Submit] = TypeAdapter(ClientFrame)


class FrameError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_client_frame(raw: str | bytes, *, max_bytes: int) -> Hello | Say | Ping | Submit:
    """Validate one incoming frame, or raise FrameError with a code the page understands."""
    if isinstance(raw, bytes):
        raise FrameError("binary_frame", "Frames must be JSON text, not binary.")
    # Measured in bytes, as the page counts them; a frame of n characters is at most 4n bytes, so most
    # frames need no encoding to be measured (every chat line passes here).
    if len(raw) * 4 > max_bytes and len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError("frame_too_large", f"Frames are limited to {max_bytes} bytes.")
    try:
        return _client_adapter.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "frame"
        if first.get("type") == "json_invalid":
            raise FrameError("bad_json", "The frame is not valid JSON.") from None
        if first.get("type") == "union_tag_invalid" or first.get("type") == "union_tag_not_found":
            raise FrameError("unknown_type", "Unknown or missing frame type.") from None
        raise FrameError("bad_frame", f"Invalid frame at {where}: {first.get('msg')}") from None


# ---- server -> client -------------------------------------------------------------------------


class Welcome(_Frame):
    type: Literal["welcome"] = "welcome"
    v: int = PROTOCOL_VERSION
    agent_id: str
    run_id: str
    state: str
    head_seq: int
    heartbeat_s: float


class Ack(_Frame):
    type: Literal["ack"] = "ack"
    client_id: str
    message_id: str


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    code: str
    message: str
    client_id: str | None = None


class Pong(_Frame):
    type: Literal["pong"] = "pong"


class Typing(_Frame):
    """Ephemeral: the other side is working on its reply. Not sequenced, not stored."""

    type: Literal["typing"] = "typing"
    sender: str
    active: bool


# Sequenced events: stored in the agent's stream before they are sent. `seq` is added by the channel.


class StateEvent(_Frame):
    type: Literal["state"] = "state"
    state: str
    text: str
    can_submit: bool


class ChatEvent(_Frame):
    type: Literal["message"] = "message"
    message_id: str
    sender: str
    text: str
    kind: str = "chat"
    data: dict[str, Any] = Field(default_factory=dict)
    mine: bool = False
    client_id: str | None = None


class TurnFrame(_Frame):
    """It is this agent's turn: enable the input described by `widget` for `timeout_s` seconds.

    Live state, not history: not sequenced and not stored. The channel sends it when the world opens the
    turn and again, after the replay, on every socket attached while it is open (`timeout_s` then counts
    what is left). `turn_id` tells one turn from the next.
    """

    type: Literal["turn"] = "turn"
    turn_id: str
    prompt: str = ""
    widget: dict[str, Any] = Field(default_factory=lambda: {"kind": "text"})
    timeout_s: float | None = None


StreamEvent = StateEvent | ChatEvent


def chat_event(
    *, message_id: str, sender: str, text: str, kind: str, data: dict[str, Any], mine: bool, client_id: str | None
) -> dict[str, Any]:
    """`ChatEvent(...).model_dump()` without the model: built for every message relayed (the hot path).
    `tests/test_protocol.py` checks the two stay the same."""
    return {"type": "message", "message_id": message_id, "sender": sender, "text": text, "kind": kind,
            "data": data, "mine": mine, "client_id": client_id}


def turn_frame(*, turn_id: str, prompt: str, widget: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    """`TurnFrame(...).model_dump()` without the model (one per turn; checked like `chat_event`)."""
    return {"type": "turn", "turn_id": turn_id, "prompt": prompt, "widget": widget, "timeout_s": timeout_s}


# ---- HTTP bodies -----------------------------------------------------------------------------


class JoinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignment_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    hit_id: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9_.:-]*$")
    worker_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    turk_submit_to: str = Field(default="", max_length=512)
    # The page's key to its assignment: made by the page before its first join and kept, or given by the
    # first join's reply. A later join of the assignment gets a token only with it (docs/protocol.md).
    resume_key: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")


class JoinReply(BaseModel):
    agent_id: str
    token: str
    ws_path: str
    state: str
    resume_key: str


class TaskInfo(BaseModel):
    run_id: str
    title: str
    description: str
    reward: float
    roles: list[str]
    protocol_version: int = PROTOCOL_VERSION
    states: dict[str, dict[str, Any]]
    limits: dict[str, int]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorReply(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    database: str
    runs: int
