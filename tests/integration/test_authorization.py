"""A worker reaches only their own agent: tokens are bound to (run, worker, assignment, agent)."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import TEST_RUNS, make_settings
from tests.support.client import Crowd
from tests.support.server import LiveServer, serve


async def _hello(live: LiveServer, token: str) -> tuple[dict[str, object], int | None]:
    async with websockets.connect(live.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token, "last_seq": 0}))
        frame = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        return frame, ws.close_code


@pytest.fixture
def expiring(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(db_url, tmp_path, TEST_RUNS).model_copy(update={"token_ttl_s": -1.0})
    with serve(settings) as live:
        yield live


async def test_an_expired_token_is_closed_with_4401_and_says_to_reload(expiring: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=expiring.base) as http:
        token = (await http.post("/task/qa/join", json={"assignment_id": "A1", "worker_id": "W1"})).json()["token"]
    frame, code = await _hello(expiring, token)
    assert code == 4401 and frame["code"] == "token_invalid"
    assert "expired" in str(frame["message"]) and "Reload" in str(frame["message"])


async def test_a_token_opens_only_its_own_agent(live: LiveServer, crowd: Crowd) -> None:
    a = await crowd.start("qa", "W-one")
    b = await crowd.start("qa", "W-two")
    welcome_a = await a.wait_frame(lambda f: f["type"] == "welcome")
    welcome_b = await b.wait_frame(lambda f: f["type"] == "welcome")
    assert welcome_a["agent_id"] == a.agent_id != welcome_b["agent_id"] == b.agent_id
    # the same worker's token is not a key to their other assignment: it still opens only the first agent
    again = crowd.worker("qa", "W-one")
    again.token = a.token
    welcome = await again.connect()
    assert welcome["agent_id"] == a.agent_id


async def test_a_token_signed_for_another_run_is_refused(live: LiveServer) -> None:
    signer = live.app.state.signer
    async with httpx.AsyncClient(base_url=live.base) as http:
        joined = (await http.post("/task/qa/join", json={"assignment_id": "A9", "worker_id": "W9"})).json()
    forged = signer.issue(run_id="chat", worker_id="W9", assignment_id="A9", agent_id=joined["agent_id"])
    frame, code = await _hello(live, forged)
    assert code == 4403 and frame["code"] == "forbidden"
