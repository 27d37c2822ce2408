"""No credential, no access: every admin path refuses with the error JSON, and a login sets a safe cookie."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.admin.conftest import TOKEN, admin_settings
from tests.support.server import LiveServer, serve

API_PATHS = [
    ("GET", "/admin/api/whoami"),
    ("GET", "/admin/api/runs"),
    ("GET", "/admin/api/runs/qa"),
    ("GET", "/admin/api/runs/qa/export?format=jsonl"),
    ("GET", "/admin/api/conversations/nope"),
    ("POST", "/admin/api/agents/nope/approve"),
    ("POST", "/admin/api/agents/nope/reject"),
    ("POST", "/admin/api/agents/nope/bonus"),
    ("POST", "/admin/api/workers/W1/block"),
    ("POST", "/admin/api/runs/qa/approve"),
    ("GET", "/metrics"),
]


def _request(server: LiveServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, server.base + path, json={} if method == "POST" else None, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), API_PATHS)
def test_admin_paths_refuse_without_a_credential(admin_server: LiveServer, method: str, path: str) -> None:
    reply = _request(admin_server, method, path)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path"), API_PATHS)
def test_admin_paths_refuse_a_wrong_token_or_cookie(admin_server: LiveServer, method: str, path: str) -> None:
    wrong_bearer = _request(admin_server, method, path, headers={"authorization": "Bearer not-the-token"})
    wrong_cookie = _request(admin_server, method, path, cookies={"parley_admin": "forged"})
    raw_token_as_cookie = _request(admin_server, method, path, cookies={"parley_admin": TOKEN})
    assert [r.status_code for r in (wrong_bearer, wrong_cookie, raw_token_as_cookie)] == [401, 401, 401]


def test_without_an_admin_token_configured_every_admin_path_is_off(db_url: str, tmp_path: Path) -> None:
    # Listening beyond loopback: no local token is made (tests/admin/test_first_run.py has the loopback case).
    settings = admin_settings(db_url, tmp_path, token="").model_copy(update={"host": "0.0.0.0"})
    with serve(settings) as server:
        for method, path in API_PATHS:
            reply = _request(server, method, path, headers={"authorization": "Bearer x"})
            assert reply.status_code == 403, path
            assert reply.json()["error"]["code"] == "admin_disabled"
        login = httpx.post(server.base + "/admin/api/session", json={"token": "anything"})
        assert login.status_code == 403


def test_login_sets_an_httponly_strict_cookie_that_opens_the_api(admin_server: LiveServer) -> None:
    with httpx.Client(base_url=admin_server.base, timeout=10) as client:
        refused = client.post("/admin/api/session", json={"token": "wrong"})
        assert refused.status_code == 401
        assert "set-cookie" not in refused.headers
        assert client.post("/admin/api/session", json={"token": TOKEN}).status_code == 200
        cookie = client.cookies.get("parley_admin")
        assert cookie and TOKEN not in cookie
        set_cookie = client.post("/admin/api/session", json={"token": TOKEN}).headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        assert client.get("/admin/api/runs").status_code == 200
        client.delete("/admin/api/session")
        assert client.get("/admin/api/runs").status_code == 401


def test_the_page_is_a_shell_that_cannot_be_framed(admin_server: LiveServer) -> None:
    reply = httpx.get(admin_server.base + "/admin", timeout=10)
    assert reply.status_code == 200
    assert "Log in" in reply.text
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert reply.headers["x-frame-options"] == "DENY"
    api = httpx.get(admin_server.base + "/admin/api/runs", timeout=10)
    assert api.headers["cache-control"] == "no-store"


async def test_live_updates_refuse_a_socket_without_the_cookie_or_from_another_site(admin_server: LiveServer) -> None:
    url = admin_server.ws_url.replace("/ws", "/admin/live/qa")
    with pytest.raises(InvalidStatus) as anonymous:
        async with connect(url, open_timeout=10):
            pass
    assert anonymous.value.response.status_code == 403
    cookie = {"Cookie": f"parley_admin={await _session(admin_server)}"}
    with pytest.raises(InvalidStatus):
        async with connect(url, open_timeout=10, additional_headers=cookie, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    async with connect(url, open_timeout=10, additional_headers=cookie) as ws:
        assert '"type": "snapshot"' in str(await ws.recv())


async def _session(server: LiveServer) -> str:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        reply = await client.post("/admin/api/session", json={"token": TOKEN})
    return str(reply.cookies["parley_admin"])
