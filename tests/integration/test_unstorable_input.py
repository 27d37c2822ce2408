"""Text and numbers Parley cannot store or send on are refused at the boundary, on both databases.

Parley stores text without NUL (U+0000) and without unpaired surrogates, and numbers in `data` that a page can
hold exactly (integers within +-(2**53 - 1), finite floats). Anything else gets a clear error (an error frame
on the socket, which stays open; a 4xx JSON answer over HTTP) and nothing is stored.
"""

import json
from typing import Any

import httpx
import pytest
import websockets

from server.store import Store
from tests.support.client import Crowd
from tests.support.server import LiveServer

UNSTORABLE_TEXT = ["a\u0000b", "a\ud800b", "\udfff"]


def _message_frame(text: str = "", data: dict[str, Any] | None = None, client_id: str = "c-1") -> str:
    # json.dumps escapes NUL and surrogates as \u0000 / \ud800, exactly as a browser's JSON.stringify does.
    return json.dumps({"type": "message", "client_id": client_id, "text": text, "data": data or {}})


@pytest.mark.parametrize("text", UNSTORABLE_TEXT)
async def test_a_chat_line_with_a_nul_or_a_lone_surrogate_gets_an_error_frame_and_is_not_stored(
    store: Store, live: LiveServer, crowd: Crowd, text: str
) -> None:
    w = await crowd.start("qa", "W-nul")
    await w.wait_turn(1)
    before = len(w.frames)
    await w.send(_message_frame(text=text, client_id="c-nul"))
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "bad_text" and error["client_id"] == "c-nul" and "not sent" in error["message"]
    await w.send({"type": "ping"})
    await w.wait_frame(lambda f: f["type"] == "pong", after=before)
    assert w.closed_code is None
    client_id = await w.say("a plain question?")  # the turn is still open: the worker can send it again
    await w.wait_stored(client_id, after=before)
    agent = await store.get_agent(w.agent_id)
    assert [m.text for m in await store.messages(agent.conversation_id)] == ["a plain question?"]


@pytest.mark.parametrize("data", [
    {"k": "a\u0000b"},
    {"a\u0000b": 1},
    {"form": {"answer": ["ok", "\ud800"]}},
])
async def test_answers_with_a_nul_or_a_lone_surrogate_in_data_are_refused(
    store: Store, live: LiveServer, crowd: Crowd, data: dict[str, Any]
) -> None:
    w = await crowd.start("qa", "W-nul-data")
    await w.wait_turn(1)
    before = len(w.frames)
    await w.send(_message_frame(text="q?", data=data, client_id="c-data"))
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "bad_text" and error["client_id"] == "c-data"
    agent = await store.get_agent(w.agent_id)
    assert await store.messages(agent.conversation_id) == []


@pytest.mark.parametrize("number", [
    "100000000000000000000", "-100000000000000000000", "1e999", "NaN", "9007199254740992",
])
async def test_a_number_a_page_cannot_hold_exactly_is_refused_and_the_socket_stays_open(
    store: Store, live: LiveServer, crowd: Crowd, number: str
) -> None:
    w = await crowd.start("qa", "W-big")
    await w.wait_turn(1)
    before = len(w.frames)
    await w.send('{"type":"message","client_id":"c-big","text":"q?","data":{"n":' + number + "}}")
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "bad_number" and error["client_id"] == "c-big" and error["message"]
    await w.send({"type": "ping"})
    await w.wait_frame(lambda f: f["type"] == "pong", after=before)
    assert w.closed_code is None
    agent = await store.get_agent(w.agent_id)
    assert await store.messages(agent.conversation_id) == []


async def test_the_largest_exact_integer_is_stored_and_echoed(store: Store, live: LiveServer, crowd: Crowd) -> None:
    w = await crowd.start("qa", "W-exact")
    await w.wait_turn(1)
    client_id = await w.say("q?", data={"n": 2**53 - 1, "m": -(2**53 - 1), "x": 1.5e300})
    echo = await w.wait_stored(client_id)
    assert echo["data"] == {"n": 2**53 - 1, "m": -(2**53 - 1), "x": 1.5e300}


async def test_answers_nested_too_deep_are_refused(store: Store, live: LiveServer, crowd: Crowd) -> None:
    w = await crowd.start("qa", "W-deep")
    await w.wait_turn(1)
    before = len(w.frames)
    nested: Any = 1
    for _ in range(100):
        nested = [nested]
    await w.send(_message_frame(text="q?", data={"n": nested}, client_id="c-deep"))
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "too_deep" and error["client_id"] == "c-deep"
    assert w.closed_code is None


async def _first_frame_and_close(live: LiveServer, first: str) -> tuple[dict[str, Any], int | None]:
    async with websockets.connect(live.ws_url, open_timeout=10) as ws:
        await ws.send(first)
        frame = json.loads(await ws.recv(decode=True))
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    return frame, ws.close_code


@pytest.mark.parametrize("token", ["abc.\u00e9", "\u00e9", "abc.d\u0000", "\u00e9.\u00e9"])
async def test_a_token_with_characters_no_token_has_is_closed_with_4401(live: LiveServer, token: str) -> None:
    frame, code = await _first_frame_and_close(live, json.dumps({"type": "hello", "token": token, "last_seq": 0}))
    assert frame["code"] == "token_invalid" and frame["message"] and code == 4401


async def test_a_hello_with_an_unpaired_surrogate_is_a_bad_first_frame_closed_with_4400(live: LiveServer) -> None:
    hello = json.dumps({"type": "hello", "token": "a.\ud800", "last_seq": 0})
    frame, code = await _first_frame_and_close(live, hello)
    assert frame["code"] == "bad_text" and code == 4400


async def test_a_resume_ahead_of_the_stream_is_closed_with_4400(live: LiveServer, crowd: Crowd) -> None:
    w = crowd.worker("qa", "W-ahead")
    await w.join()
    hello = json.dumps({"type": "hello", "token": w.token, "last_seq": 10_000})
    frame, code = await _first_frame_and_close(live, hello)
    assert frame["code"] == "bad_resume" and code == 4400


# ---- HTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("turk_submit_to", ["https://x\u0000", "https://x\ud800"])
async def test_a_join_with_unstorable_text_is_a_422_and_stores_nothing(
    store: Store, live: LiveServer, turk_submit_to: str
) -> None:
    body = json.dumps({"assignment_id": "A-nul", "worker_id": "W-nul", "turk_submit_to": turk_submit_to})
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as http:
        reply = await http.post("/task/qa/join", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request" and "turk_submit_to" in error["message"]
    assert await store.agents("qa") == []


@pytest.mark.parametrize("path", ["/task/q%00a/join", "/task/qa%00/info", "/task/q%00a?assignmentId=x"])
async def test_a_nul_in_a_worker_path_is_a_400_json(live: LiveServer, path: str) -> None:
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as http:
        reply = await http.post(path, json={"assignment_id": "A1", "worker_id": "W1"}) if path.endswith("join") \
            else await http.get(path)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "bad_text"


async def test_a_nul_in_a_query_parameter_is_a_400_json(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as http:
        reply = await http.get("/task/qa?assignmentId=A%00&hitId=H")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "bad_text"
