"""Every websocket frame and HTTP body, as typed models, both directions. Versioned by PROTOCOL_VERSION.

The no-loss rules (docs/protocol.md):
- a client message carries a `client_id`; the server stores it, then acks it, then delivers it;
- each agent's outbound stream has gap-free sequence numbers starting at 1 (`seq`);
- `hello.last_seq` resumes: the server replays every event with a greater seq, in order, then goes live;
- a resent client message (same client_id) is acked again with the same message id, never stored twice.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from server.close_codes import describe_close_codes

PROTOCOL_VERSION = 2  # 2: the echo is a message's ack; turns are live frames, not stored events

ClientId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

# ---- what Parley stores ------------------------------------------------------------------------
#
# Text without NUL (U+0000) and without unpaired surrogates: PostgreSQL cannot store the first, no UTF-8
# encoder the second, so both are refused where they come in (frames and HTTP bodies), the same on every
# database. Numbers in `data` are what a page holds exactly and every JSON encoder on the way writes:
# integers within +-(2**53 - 1) (JavaScript's safe integers) and finite floats. Structured answers nest
# at most MAX_DATA_DEPTH levels.

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DATA_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(text: str) -> str:
    if _UNSTORABLE.search(text) is not None:
        raise PydanticCustomError("bad_text", "text contains a NUL character or an unpaired surrogate")
    return text


def _storable_json(value: Any) -> Any:
    """Check a JSON value (keys, strings, numbers, depth) against what Parley stores; return it unchanged."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _storable(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                raise PydanticCustomError("bad_number", "integers are limited to +-(2**53 - 1)")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise PydanticCustomError("bad_number", "numbers must be finite")
        elif depth > MAX_DATA_DEPTH:
            raise PydanticCustomError("too_deep", "structured answers nest at most {limit} levels",
                                      {"limit": MAX_DATA_DEPTH})
        elif isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return value


# The schema says it too (API clients and schema-driven tests read it); the validator is what enforces it.
# The pattern names NUL only: JSON Schema validators (ECMA or Rust regexes) cannot express an unpaired surrogate.
_STORED_TEXT_SCHEMA = {"pattern": "^[^\\x00]*$", "description": "text without NUL and without unpaired surrogates"}
StoredText = Annotated[str, AfterValidator(_storable), Field(json_schema_extra=_STORED_TEXT_SCHEMA)]
StoredData = Annotated[dict[str, Any], AfterValidator(_storable_json)]


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
    text: StoredText = Field(default="", max_length=100_000)
    data: StoredData = Field(default_factory=dict)


class Ping(_Frame):
    type: Literal["ping"]


class Submit(_Frame):
    """Sent by the page just before it posts the MTurk form."""

    type: Literal["submit"]


class TypingNow(_Frame):
    """The worker is typing (`active`) or stopped. Relayed to the partners in the conversation as `Typing`,
    at most one a second per worker; never stored. The page sends one every few seconds while typing."""

    type: Literal["typing"]
    active: bool


AnyClientFrame = Hello | Say | Ping | Submit | TypingNow
ClientFrame = Annotated[AnyClientFrame, Field(discriminator="type")]
_client_adapter: TypeAdapter[AnyClientFrame] = TypeAdapter(ClientFrame)


# Refusals of what Parley does not store, by pydantic error type: the code and the message the page shows.
_UNSTORABLE_ERRORS = {
    "bad_text": "Your message contains a character that cannot be stored (a NUL or an unpaired surrogate), so "
                "it was not sent. Remove that character and send it again.",
    "bad_number": f"A number in your answer is too large to keep exactly (the limit is {MAX_SAFE_INTEGER:,}) "
                  "or is not a number, so it was not sent. Correct it and send it again.",
    "too_deep": f"Your answer is nested more than {MAX_DATA_DEPTH} levels deep, so it was not sent.",
}


class FrameError(ValueError):
    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_id = client_id  # the refused message's, when the frame had a valid one


def parse_client_frame(raw: str | bytes, *, max_bytes: int) -> AnyClientFrame:
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
            raise _invalid_json(raw) from None
        if first.get("type") == "union_tag_invalid" or first.get("type") == "union_tag_not_found":
            raise FrameError("unknown_type", "Unknown or missing frame type.") from None
        client_id = _client_id(_read(raw))
        if first["type"] in _UNSTORABLE_ERRORS:
            raise FrameError(first["type"], _UNSTORABLE_ERRORS[first["type"]], client_id) from None
        raise FrameError("bad_frame", f"Invalid frame at {where}: {first.get('msg')}", client_id) from None


def _invalid_json(raw: str) -> FrameError:
    """The frame parser refuses an escaped unpaired surrogate (`"\\ud800"`) and nesting past its own depth
    limit as invalid JSON. The standard library reads both: for a frame it reads, say what is wrong with it
    and name the message, so that the page stops resending it."""
    value = _read(raw)
    if value is None:
        return FrameError("bad_json", "The frame is not valid JSON.")
    client_id = _client_id(value)
    try:
        _storable_json(value)
    except PydanticCustomError as exc:
        if exc.type in _UNSTORABLE_ERRORS:
            return FrameError(exc.type, _UNSTORABLE_ERRORS[exc.type], client_id)
    return FrameError("bad_json", "The frame is not valid JSON.", client_id)


def _read(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


_client_id_adapter: TypeAdapter[ClientId] = TypeAdapter(ClientId)


def _client_id(frame: Any) -> str | None:
    """The client id of a refused message frame, when it has a valid one."""
    try:
        return _client_id_adapter.validate_python(frame.get("client_id"))
    except (ValueError, AttributeError):
        return None


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


class PartnerTurn(_Frame):
    """Ephemeral: it is a partner's turn (`sender`, their role), with `timeout_s` to answer. Sent to the other
    workers of the conversation when the turn opens; not sequenced, not stored."""

    type: Literal["partner_turn"] = "partner_turn"
    sender: str
    timeout_s: float | None = None


class Presence(_Frame):
    """Ephemeral: a partner's page went away (`present` false: its socket closed or went silent; they have
    `grace_s` to come back) or came back. Not sequenced, not stored."""

    type: Literal["presence"] = "presence"
    sender: str
    present: bool
    grace_s: float


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
    turk_submit_to: StoredText = Field(default="", max_length=512)
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
    close_codes: dict[str, dict[str, Any]] = Field(default_factory=describe_close_codes)


class TaskPreview(BaseModel):
    """What the page shows in the task pane while the worker only previews the HIT (None: nothing)."""

    context: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorReply(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    database: str
    runs: int
    instance: str = ""  # the serving process that answered (server/ownership.py)
