"""The admin credential's life: a logged-out cookie is dead, wrong guesses are throttled, short tokens refused."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.settings import Settings
from tests.admin.conftest import TOKEN
from tests.support.server import LiveServer

WHOAMI = "/admin/api/whoami"


async def _log_in(client: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    return await client.post("/admin/api/session", json={"token": token})


async def test_a_logged_out_session_cookie_no_longer_opens_the_api(admin_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=admin_server.base, timeout=10) as client:
        assert (await _log_in(client)).status_code == 200
        kept = str(client.cookies["parley_admin"])
        assert (await client.get(WHOAMI)).status_code == 200
        assert (await client.delete("/admin/api/session")).status_code == 200
    replayed = {"parley_admin": kept}
    async with httpx.AsyncClient(base_url=admin_server.base, timeout=10, cookies=replayed) as replay:
        reply = await replay.get(WHOAMI)
    assert reply.status_code == 401, "the cookie kept from before the logout still opens the API"
    assert reply.json()["error"]["code"] == "unauthorized"


async def test_logging_out_one_session_leaves_another_open(admin_server: LiveServer) -> None:
    async with (
        httpx.AsyncClient(base_url=admin_server.base, timeout=10) as laptop,
        httpx.AsyncClient(base_url=admin_server.base, timeout=10) as phone,
    ):
        assert (await _log_in(laptop)).status_code == 200
        assert (await _log_in(phone)).status_code == 200
        assert laptop.cookies["parley_admin"] != phone.cookies["parley_admin"]
        await laptop.delete("/admin/api/session")
        assert (await phone.get(WHOAMI)).status_code == 200
        assert (await laptop.get(WHOAMI)).status_code == 401


ATTACKER = "127.0.0.2"  # another loopback address: the server sees a different client


def _from(base: str, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=address))


async def _flood(base: str, attempts: int) -> tuple[dict[int, int], float]:
    """`attempts` wrong logins from ATTACKER as fast as one client sends them: status counts, 401s per second."""
    statuses: dict[int, int] = {}
    async with _from(base, ATTACKER) as client:
        started = time.perf_counter()
        for i in range(attempts):
            reply = await client.post("/admin/api/session", json={"token": f"guess-{i}"})
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
        elapsed = time.perf_counter() - started
    return statuses, statuses.get(401, 0) / elapsed


async def test_a_flood_of_wrong_logins_is_throttled_with_a_retry_time(admin_server: LiveServer) -> None:
    statuses, checked_per_s = await _flood(admin_server.base, 300)
    print(f"300 wrong logins: {statuses}, {checked_per_s:.1f} wrong tokens checked per second")  # noqa: T201
    assert statuses.get(401, 0) <= 10, f"wrong logins were all checked: {statuses}"
    assert statuses.get(429, 0) >= 290
    async with _from(admin_server.base, ATTACKER) as client:
        throttled = await client.post("/admin/api/session", json={"token": "one-more"})
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["retry-after"])
    assert 1 <= retry_after <= 600
    error = throttled.json()["error"]
    assert error["code"] == "too_many_attempts"
    assert f"{retry_after} s" in error["message"]


async def test_wrong_bearer_tokens_are_throttled_like_wrong_logins(admin_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=admin_server.base, timeout=10) as client:
        codes = [
            (await client.get(WHOAMI, headers={"authorization": f"Bearer guess-{i}"})).status_code for i in range(40)
        ]
    assert codes.count(401) <= 10 and codes[-1] == 429, codes


async def test_the_admin_still_logs_in_from_another_address_during_a_flood(admin_server: LiveServer) -> None:
    flood = asyncio.create_task(_flood(admin_server.base, 200))
    async with httpx.AsyncClient(base_url=admin_server.base, timeout=10) as admin:
        while not flood.done():
            assert (await _log_in(admin)).status_code == 200
            assert (await admin.get(WHOAMI)).status_code == 200
    statuses, _ = await flood
    assert statuses.get(429, 0) >= 150


@pytest.mark.parametrize("provider", ["sandbox", "live"])
def test_a_short_admin_token_is_refused_on_a_non_local_provider_with_how_to_make_one(provider: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(provider=provider, public_url="https://parley.example", admin_token="x")  # type: ignore[arg-type]
    message = str(refused.value)
    assert "16" in message and "secrets.token_urlsafe" in message


def test_the_sandbox_provider_accepts_a_long_admin_token_or_none() -> None:
    assert Settings(provider="sandbox", admin_token="x" * 16).admin_token == "x" * 16
    assert Settings(provider="sandbox").admin_token == ""
    assert Settings(provider="builtin", admin_token="x").admin_token == "x"


async def test_logging_out_closes_the_sessions_live_dashboard_socket(admin_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=admin_server.base, timeout=10) as client:
        assert (await _log_in(client)).status_code == 200
        cookie = {"Cookie": f"parley_admin={client.cookies['parley_admin']}"}
        url = admin_server.ws_url.replace("/ws", "/admin/live/qa")
        async with connect(url, open_timeout=10, additional_headers=cookie) as ws:
            assert '"type": "snapshot"' in str(await asyncio.wait_for(ws.recv(), 10))
            await client.delete("/admin/api/session")
            deadline = time.monotonic() + 15
            with pytest.raises(ConnectionClosed) as closed:
                while time.monotonic() < deadline:  # snapshots may come until the socket notices the logout
                    await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
