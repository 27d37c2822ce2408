"""Parley's uvicorn options: the websocket message cap, the time limit on a request's head, and one definition
of them used by every way Parley starts."""

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from server import serving
from tests.conftest import make_settings
from tests.support.client import Crowd
from tests.support.server import LiveServer, serve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def quick_handshake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setattr(serving, "HANDSHAKE_TIMEOUT_S", 1.0)
    with serve(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", tmp_path, {})) as live:
        yield live


def _seconds_until_closed(port: int, trickle: bytes, bound: float) -> float:
    """Open a TCP connection, send `trickle` one byte every 0.2 s, and time how long the server keeps it."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(0.2)
        for i in range(10_000):
            if time.monotonic() - started > bound:
                raise AssertionError(f"the server kept the connection past {bound} s")
            try:
                if i < len(trickle):
                    conn.send(trickle[i:i + 1])
                if conn.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                continue
            except ConnectionError:
                return time.monotonic() - started
    raise AssertionError("unreachable")


@pytest.mark.parametrize("trickle", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100])
def test_a_silent_or_trickling_connection_is_closed_after_the_handshake_limit(
    quick_handshake: LiveServer, trickle: bytes
) -> None:
    held = _seconds_until_closed(quick_handshake.port, trickle, bound=10.0)
    assert 0.8 < held < 5.0


async def test_a_websocket_message_over_the_transport_cap_is_closed_1009_and_one_under_it_gets_an_error_frame(
    live: LiveServer, crowd: Crowd
) -> None:
    cap = serving.ws_max_size(live.settings)
    w = await crowd.start("qa", "W-cap")
    await w.wait_turn(1)
    before = len(w.frames)
    await w.send(json.dumps({"type": "message", "client_id": "c-1", "text": "x" * (cap - 100)}))
    error = await w.wait_frame(lambda f: f["type"] == "error", after=before)
    assert error["code"] == "frame_too_large" and w.closed_code is None
    async with websockets.connect(live.ws_url, max_size=None) as ws:
        await ws.send("x" * (cap + 1))
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1009


def test_every_way_parley_starts_uses_the_shared_uvicorn_options() -> None:
    starts = {
        "Makefile": "-m server.serving", "Dockerfile": '"-m", "server.serving"',
        "tests/support/process.py": '"-m", "server.serving"', "bench/servers.py": '"-m", "server.serving"',
        "tests/support/server.py": "**uvicorn_options(settings)",
        "server/cli_servers.py": '"-m", "server.serving"',  # the server `parley run` starts when none runs
    }
    for path, expected in starts.items():
        text = (ROOT / path).read_text()
        assert expected in text, path
        assert not re.search(r"(bin/uvicorn |\"uvicorn\", \"server|-m\", \"uvicorn\")", text), path
    cli = (ROOT / "server/cli_run.py").read_text()  # `parley serve`
    runs = re.findall(r"uvicorn\.run\(.*\)", cli)
    assert runs and all("**uvicorn_options(" in call for call in runs), runs
