"""Fuzzing the websocket and the join body with Hypothesis, against a server on each database.

The rule under test: no frame a client can send ends in a dropped socket. Every frame after the hello gets
exactly one answer (an error frame, a pong, or its message's echo or ack) and the socket stays open; every
error about a message carries the message's client id when it had a valid one, so the page stops resending
it (nothing a page resends loops forever). A bad first frame gets an error frame and its documented close
code. A newer socket for the same agent closes the older with 4409. Join bodies get JSON answers, never a 500.

The server runs in a process of its own: Parley and its server library use the global `random` module (ping
payloads, message ids), and Hypothesis refuses a draw during which that module's state changed, which a
server thread in this process would do at any moment.
"""

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.protocol import MAX_SAFE_INTEGER
from tests.conftest import BACKENDS, PG_URL, _reset_pg
from tests.support.process import ServerProcess
from tests.support.server import free_port

# Text as a page may send it: any character, plus NUL and unpaired surrogates (Hypothesis leaves those out
# of its text by default).
nasty_chars = st.characters() | st.just("\x00") | st.characters(categories=["Cs"])
nasty_text = st.text(nasty_chars, max_size=40)
big_integers = st.integers(min_value=MAX_SAFE_INTEGER - 2, max_value=2**80) | st.integers(
    min_value=-(2**80), max_value=-(MAX_SAFE_INTEGER - 2)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | big_integers | st.floats() | nasty_text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(nasty_text, children, max_size=5),
    max_leaves=30,
)
deep_data = st.integers(min_value=1, max_value=400).map(lambda n: {"answer": json.loads("[" * n + "1" + "]" * n)})
client_ids = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z") | st.text(max_size=80) | st.integers()
frame_types = st.sampled_from(["hello", "message", "ping", "submit", "ack", "", "MESSAGE", "welcome"])
structured = st.fixed_dictionaries(
    {"type": frame_types},
    optional={
        "client_id": client_ids,
        "text": nasty_text | st.integers() | st.none(),
        "data": json_values | deep_data,
        "token": nasty_text,
        "last_seq": st.integers(min_value=-(2**70), max_value=2**70),
        "v": st.integers(),
        "extra": json_values,
    },
).map(json.dumps)
messages = st.fixed_dictionaries(
    {"type": st.just("message"), "client_id": client_ids},
    optional={"text": nasty_text, "data": st.dictionaries(nasty_text, json_values, max_size=4) | deep_data},
).map(json.dumps)
raw_text = st.text(st.characters(codec="utf-8") | st.just("\x00"), max_size=300)  # a text frame is UTF-8: no surrogates
deep = st.integers(min_value=100, max_value=50_000).map(lambda n: "[" * n + "]" * n)
# Over the protocol's frame limit, under the transport's cap (over it, the server closes 1009: tests/test_serving.py)
huge = st.integers(min_value=65_000, max_value=130_000).map(lambda n: json.dumps({"type": "message", "text": "x" * n}))
binary = st.binary(min_size=1, max_size=300)
frames = st.one_of(structured, messages, json_values.map(json.dumps), raw_text, deep, huge, binary)
dotted = st.text(st.characters(codec="ascii"), max_size=40).map(lambda t: f"{t}.{t}")
tokens = nasty_text | dotted | st.just("abc.\u00e9")

FIRST_FRAME_CLOSES = {"token_invalid": 4401, "forbidden": 4403, "unknown_run": 4403}


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    db_url = f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}"
    if request.param == "postgresql":
        asyncio.run(_reset_pg(PG_URL))
        db_url = PG_URL
    proc = ServerProcess(
        port=free_port(), data_dir=Path(tmp), db_url=db_url,
        runs={"w": "tests.support.tasks:storm_chat", "endless": "tests.support.tasks:endless_turns"},
        PARLEY_RATE_BURST="100000", PARLEY_RATE_PER_S="100000", PARLEY_MTURK_PUBLISH="[]",
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _ws_url(server: ServerProcess) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def _join(server: ServerProcess, run_id: str, worker_id: str) -> dict[str, Any]:
    reply = httpx.post(f"{server.base}/task/{run_id}/join", json={"assignment_id": f"A-{worker_id}",
                                                                  "worker_id": worker_id}, timeout=10)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture(scope="module")
def agent(fuzz_server: ServerProcess) -> dict[str, Any]:
    """A worker of the endless run: its turn is always open, so its messages reach the store. `head` is the
    last seq seen, so that each new socket resumes from it instead of replaying the whole stream."""
    return {**_join(fuzz_server, "endless", "W-fuzz"), "head": 0}


@contextmanager
def _open(server: ServerProcess, agent: dict[str, Any]) -> Iterator[ClientConnection]:
    with connect(_ws_url(server), max_size=2**24, open_timeout=10, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "hello", "token": agent["token"], "last_seq": agent["head"]}))
        welcome = json.loads(ws.recv(timeout=10))
        assert welcome["type"] == "welcome", welcome
        yield ws


def _client_id(raw: str | bytes) -> str | None:
    """The client id of a message frame, when it is one the server accepts."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(frame, dict) or frame.get("type") != "message":
        return None
    found = frame.get("client_id")
    ok = isinstance(found, str) and 0 < len(found) <= 64 and all(c.isascii() and (c.isalnum() or c in "_.:-")
                                                                 for c in found)
    return found if ok else None


def _answer(ws: ClientConnection, client_id: str | None, agent: dict[str, Any]) -> dict[str, Any]:
    """The next frame that answers a sent frame: an error, a pong, an ack, or the message's own echo."""
    while True:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=10))
        agent["head"] = max(agent["head"], frame.get("seq", 0))
        if frame["type"] == "message" and frame.get("mine") and frame.get("client_id") == client_id:
            return frame
        if "seq" not in frame and frame["type"] in ("error", "pong", "ack"):
            return frame


def _send_and_check(ws: ClientConnection, raw: str | bytes, agent: dict[str, Any]) -> None:
    client_id = _client_id(raw)
    ws.send(raw)
    answer = _answer(ws, client_id, agent)
    assert answer["type"] in ("error", "pong", "ack", "message"), (raw[:200], answer)
    if answer["type"] == "error":
        assert answer["code"] and answer["message"]
        if client_id is not None:  # the page settles (stops resending) a message whose error names it
            assert answer.get("client_id") == client_id, (raw[:200], answer)
    elif answer["type"] in ("ack", "message"):
        assert client_id is not None and answer["client_id"] == client_id


def _still_open(ws: ClientConnection, agent: dict[str, Any]) -> None:
    ws.send('{"type":"ping"}')
    assert _answer(ws, None, agent)["type"] == "pong"


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@example(batch=['{"type":"message","client_id":"c-nul","text":"a\\u0000b"}'])
@example(batch=['{"type":"message","client_id":"c-big","data":{"n":100000000000000000000}}'])
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_every_fuzzed_frame_gets_one_answer_and_the_socket_stays_open(
    fuzz_server: ServerProcess, agent: dict[str, Any], batch: list[str | bytes]
) -> None:
    with _open(fuzz_server, agent) as ws:
        for raw in batch:
            _send_and_check(ws, raw, agent)
        _still_open(ws, agent)
    assert httpx.get(f"{fuzz_server.base}/healthz", timeout=5).status_code == 200


@settings(FUZZ, max_examples=40)
@given(batches=st.lists(st.lists(messages | frames, max_size=4), min_size=2, max_size=4))
def test_a_newer_socket_closes_the_older_with_4409_and_serves_on(
    fuzz_server: ServerProcess, agent: dict[str, Any], batches: list[list[str | bytes]]
) -> None:
    sockets: list[ClientConnection] = []
    with ExitStack() as opened:
        for batch in batches:
            sockets.append(opened.enter_context(_open(fuzz_server, agent)))
            for raw in batch:
                _send_and_check(sockets[-1], raw, agent)
        for older in sockets[:-1]:
            with pytest.raises(ConnectionClosed):
                while True:
                    older.recv(timeout=10)
            assert older.protocol.close_code == 4409
        _still_open(sockets[-1], agent)


@settings(FUZZ, max_examples=80)
@example(first=json.dumps({"type": "hello", "token": "abc.\u00e9", "last_seq": 0}))
@given(first=tokens.map(lambda t: json.dumps({"type": "hello", "token": t, "last_seq": 0})) | frames)
def test_a_refused_first_frame_gets_an_error_frame_and_its_documented_close(
    fuzz_server: ServerProcess, first: str | bytes
) -> None:
    with connect(_ws_url(fuzz_server), max_size=2**24, open_timeout=10, ping_interval=None) as ws:
        ws.send(first)
        frame = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert frame["type"] == "error" and frame["code"] and frame["message"], frame
    assert ws.protocol.close_code == FIRST_FRAME_CLOSES.get(frame["code"], 4400), frame


@settings(FUZZ, max_examples=150)
@given(body=json_values | st.fixed_dictionaries({}, optional={
    "assignment_id": nasty_text | st.integers(), "worker_id": nasty_text | st.none(),
    "hit_id": json_values, "turk_submit_to": st.text(nasty_chars, max_size=600),
}))
def test_fuzzed_join_bodies_get_json_answers_never_a_500(fuzz_server: ServerProcess, body: Any) -> None:
    content = json.dumps(body)  # escapes NUL and unpaired surrogates as \u0000 / \ud800, as a browser does
    reply = httpx.post(f"{fuzz_server.base}/task/w/join", content=content,
                       headers={"content-type": "application/json"}, timeout=10)
    assert reply.status_code in (200, 403, 409, 422), reply.text
    if reply.status_code != 200:
        error = reply.json()["error"]
        assert error["code"] and error["message"]
