"""Fuzzing the websocket: Hypothesis-generated frames each get exactly one answer (an error frame, or a pong
for a ping), nothing is stored, and the server stays responsive. Also fuzzed JSON bodies for join."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.conftest import make_settings
from tests.support.server import LiveServer, serve

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
frame_types = st.sampled_from(["hello", "message", "ping", "submit", "ack", "", "MESSAGE", "welcome"])
structured = st.fixed_dictionaries(
    {"type": frame_types},
    optional={
        "client_id": st.text(max_size=80) | st.integers(),
        "text": st.text(max_size=200) | st.integers() | st.none(),
        "data": json_values,
        "token": st.text(max_size=30),
        "last_seq": st.integers(min_value=-(2**70), max_value=2**70),
        "v": st.integers(),
        "extra": json_values,
    },
).map(json.dumps)
raw_text = st.text(max_size=300)
deep = st.integers(min_value=100, max_value=50_000).map(lambda n: "[" * n + "]" * n)
huge = st.integers(min_value=65_000, max_value=200_000).map(lambda n: json.dumps({"type": "message", "text": "x" * n}))
binary = st.binary(min_size=1, max_size=300)
frames = st.one_of(structured, json_values.map(json.dumps), raw_text, deep, huge, binary)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = make_settings(f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}", Path(tmp), {"w": "tests.support.tasks:storm_chat"})
    cfg = cfg.model_copy(update={"rate_burst": 100_000, "rate_per_s": 100_000.0})
    with serve(cfg) as live:
        joined = httpx.post(f"{live.base}/task/w/join", json={"assignment_id": "A-fuzz", "worker_id": "W-fuzz"}).json()
        yield live, joined


def _hello(ws: ClientConnection, token: str) -> None:
    ws.send(json.dumps({"type": "hello", "token": token, "last_seq": 0}))
    while json.loads(ws.recv(timeout=10))["type"] != "welcome":
        pass


def _answer(ws: ClientConnection) -> dict[str, Any]:
    """The next frame that answers a sent frame (skipping the agent's stream events)."""
    while True:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=10))
        if "seq" not in frame:
            return frame


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_every_fuzzed_frame_gets_one_answer_and_the_server_stays_responsive(
    fuzz_server: tuple[LiveServer, dict[str, Any]], batch: list[str | bytes]
) -> None:
    live, joined = fuzz_server
    with connect(live.ws_url, max_size=2**24, open_timeout=10) as ws:
        _hello(ws, joined["token"])
        for raw in batch:
            ws.send(raw)
            answer = _answer(ws)
            assert answer["type"] in ("error", "pong"), (raw[:200], answer)
            if answer["type"] == "error":
                assert answer["code"] and answer["message"]
        ws.send('{"type":"ping"}')
        assert _answer(ws)["type"] == "pong"
    health = httpx.get(f"{live.base}/healthz", timeout=5)
    assert health.status_code == 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | st.fixed_dictionaries({}, optional={
    "assignment_id": st.text(max_size=200) | st.integers(), "worker_id": st.text(max_size=200) | st.none(),
    "hit_id": json_values, "turk_submit_to": st.text(max_size=600),
}))
def test_fuzzed_join_bodies_get_json_answers_never_a_500(
    fuzz_server: tuple[LiveServer, dict[str, Any]], body: Any
) -> None:
    live, _ = fuzz_server
    reply = httpx.post(f"{live.base}/task/w/join", json=body, timeout=10)
    assert reply.status_code in (200, 403, 409, 422), reply.text
    if reply.status_code != 200:
        error = reply.json()["error"]
        assert error["code"] and error["message"]
