"""Live MTurk is never a default and refuses unsafe settings; the built-in sandbox is not served with it."""

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from server.main import create_app
from server.settings import Settings


def test_the_default_provider_is_the_builtin_sandbox() -> None:
    assert Settings(_env_file=None).provider == "builtin"  # type: ignore[call-arg]


def test_live_refuses_plain_http_and_a_missing_admin_token() -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(provider="live", public_url="http://parley.example", admin_token="x" * 20)
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(provider="live", public_url="https://parley.example")


async def _sandbox_status(settings: Settings) -> tuple[int, int]:
    # No lifespan runs here: nothing starts, nothing reaches MTurk; only routing is asked.
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as http:
        target = {"X-Amz-Target": "MTurkRequesterServiceV20170117.GetAccountBalance"}
        api = await http.post("/sandbox/mturk", json={}, headers=target)
        site = await http.get("/sandbox/worker")
    return api.status_code, site.status_code


async def test_the_sandbox_is_unreachable_when_the_provider_is_live(tmp_path: Path) -> None:
    live = Settings(provider="live", public_url="https://parley.example", admin_token="x" * 20, data_dir=tmp_path)
    assert await _sandbox_status(live) == (404, 404)
    api, site = await _sandbox_status(Settings(data_dir=tmp_path))
    assert api == 200 and site == 200
