"""Bad input gets a clear error and changes nothing: frames, tokens, joins, unknown runs."""

import json

import httpx
import pytest
import websockets

from server.store import Store
from tests.support.client import Crowd
from tests.support.server import LiveServer


@pytest.mark.parametrize(("raw", "code"), [
    ("{not json", "bad_json"),
    ('{"type":"dance"}', "unknown_type"),
    ('{"type":"message","text":"no client id"}', "bad_frame"),
    ("[" * 3000 + "]" * 3000, "bad_json"),
    ('{"type":"hello","token":"x"}', "unexpected_hello"),
])
async def test_malformed_frames_get_error_frames_and_the_socket_stays_usable(
    live: LiveServer, crowd: Crowd, raw: str, code: str
) -> None:
    w = await crowd.start("qa", "W-bad")
    await w.wait_turn(1)
    before = len(w.frames)
    await w.send(raw)
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == code and error["message"]
    await w.send({"type": "ping"})
    await w.wait_frame(lambda f: f["type"] == "pong", after=before)


async def test_binary_and_oversize_frames_are_refused(store: Store, live: LiveServer, crowd: Crowd) -> None:
    w = await crowd.start("qa", "W-big")
    await w.wait_turn(1)
    before = len(w.frames)
    assert w.ws is not None
    await w.ws.send(b"\x00\xff binary")
    await w.wait_frame(lambda f: f.get("code") == "binary_frame", after=before)
    await w.send(json.dumps({"type": "message", "client_id": "c", "text": "x" * 70_000}))
    await w.wait_frame(lambda f: f.get("code") == "frame_too_large", after=before)
    await w.say("y" * 5001)
    await w.wait_frame(lambda f: f.get("code") == "message_too_long", after=before)
    agent = await store.get_agent(w.agent_id)
    assert await store.messages(agent.conversation_id) == []  # nothing half-written


async def test_a_message_out_of_turn_is_refused_with_a_reason(live: LiveServer, crowd: Crowd) -> None:
    a = await crowd.start("chat", "W-a")
    await a.wait_state("waiting")
    b = await crowd.start("chat", "W-b")
    await b.wait_state("in_task")
    await b.wait_frame(lambda f: f["type"] == "state" and f["state"] == "in_task")
    before = len(b.frames)
    client_id = await b.say("me first")  # Speaker 1 (a) has the first turn
    error = await b.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "not_your_turn" and error["client_id"] == client_id


async def test_a_flood_is_answered_with_rate_limit_errors(live: LiveServer, crowd: Crowd) -> None:
    w = await crowd.start("qa", "W-flood")
    await w.wait_turn(1)
    before = len(w.frames)
    for _ in range(60):
        await w.send({"type": "ping"})
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "rate_limited" and "too fast" in error["message"]


async def _hello(live: LiveServer, token: str) -> tuple[dict[str, object], int | None]:
    async with websockets.connect(live.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token, "last_seq": 0}))
        frame = json.loads(await ws.recv())
        try:
            await ws.recv()
        except websockets.ConnectionClosed:
            pass
        return frame, ws.close_code


async def test_a_forged_token_is_closed_with_4401(live: LiveServer) -> None:
    frame, code = await _hello(live, "eyJyIjoicWEifQ.forged")
    assert frame["code"] == "token_invalid" and code == 4401


async def test_the_first_frame_must_be_hello(live: LiveServer) -> None:
    async with websockets.connect(live.ws_url) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        frame = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert frame["code"] == "hello_expected" and ws.close_code == 4400


async def test_a_page_from_before_an_update_is_asked_to_reload(live: LiveServer, crowd: Crowd) -> None:
    worker = crowd.worker("qa", "W-old-page")
    await worker.join()
    async with websockets.connect(live.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": worker.token, "last_seq": 0}))
        frame = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert frame["code"] == "protocol_version" and "Reload the page" in frame["message"] and ws.close_code == 4400
    assert (await worker.connect())["type"] == "welcome"  # the reloaded page speaks the current version


async def test_an_assignment_cannot_be_taken_by_another_worker(live: LiveServer, crowd: Crowd) -> None:
    owner = await crowd.start("qa", "W-owner")
    async with httpx.AsyncClient(base_url=live.base) as http:
        reply = await http.post("/task/qa/join", json={
            "assignment_id": owner.assignment_id, "worker_id": "W-thief", "hit_id": "", "turk_submit_to": "",
        })
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "assignment_taken"


@pytest.mark.parametrize("body", [
    {},
    {"assignment_id": "A1"},
    {"assignment_id": "A 1", "worker_id": "W1"},
    {"assignment_id": "A1", "worker_id": "W1", "surprise": True},
    {"assignment_id": "A1" * 100, "worker_id": "W1"},
])
async def test_bad_join_bodies_get_a_4xx_json_error(store: Store, live: LiveServer, body: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=live.base) as http:
        reply = await http.post("/task/qa/join", json=body)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "invalid_request"
    assert await store.agents("qa") == []


async def test_an_unknown_run_is_a_404_with_a_reason(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base) as http:
        reply = await http.post("/task/nope/join", json={"assignment_id": "A1", "worker_id": "W1"})
        page = await http.get("/task/nope")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "unknown_run"
    assert page.status_code == 404


async def test_the_task_page_info_and_health_are_served(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base) as http:
        page = await http.get("/task/qa", params={"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H"})
        info = (await http.get("/task/qa/info")).json()
        health = (await http.get("/healthz")).json()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://worker.mturk.com https://workersandbox.mturk.com" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    async with httpx.AsyncClient(base_url=live.base) as http:
        other = await http.get("/healthz")
    assert other.headers["content-security-policy"].startswith("frame-ancestors 'self'")
    assert info["title"].startswith("Write a question")
    assert info["states"]["partner_left"]["can_submit"] is True
    assert health["status"] == "ok" and health["runs"] == 5


async def test_a_message_whose_handling_fails_gets_an_internal_error_and_the_socket_stays_open(
    live: LiveServer, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await crowd.start("qa", "W-fault")
    await w.wait_turn(1)

    async def failing_receive(agent_id: str, frame: object) -> None:
        raise RuntimeError("the store refused the write")

    monkeypatch.setattr(live.app.state.runs.get("qa"), "receive", failing_receive)
    before = len(w.frames)
    client_id = await w.say("lost to a fault?")
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "internal" and error["client_id"] == client_id and "not saved" in error["message"]
    await w.send({"type": "ping"})
    await w.wait_frame(lambda f: f["type"] == "pong", after=before)
    assert w.closed_code is None
