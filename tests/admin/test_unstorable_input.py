"""The admin API refuses text Parley cannot store (NUL, unpaired surrogates) with 4xx JSON, on both databases."""

import json

import httpx
import pytest

from server.store import Store


@pytest.mark.parametrize("path", [
    "/admin/api/runs/q%00a",
    "/admin/api/runs/q%00a/form",
    "/admin/api/runs/q%00a/export",
    "/admin/api/conversations/c%00",
])
async def test_a_nul_in_an_admin_path_parameter_is_a_400_json(admin: httpx.AsyncClient, path: str) -> None:
    reply = await admin.get(path)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "bad_text" and error["message"]


@pytest.mark.parametrize("path", ["/admin/api/agents/a%00/approve", "/admin/api/workers/W%00/block"])
async def test_a_nul_in_an_admin_action_path_is_a_400_json(admin: httpx.AsyncClient, path: str) -> None:
    reply = await admin.post(path, json={"reason": "spam", "feedback": ""})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "bad_text"


@pytest.mark.parametrize("reason", ["spam\u0000", "spam\ud800"])
async def test_blocking_with_unstorable_text_in_the_reason_is_a_422_and_blocks_nobody(
    store: Store, admin: httpx.AsyncClient, reason: str
) -> None:
    reply = await admin.post(
        "/admin/api/workers/W-nul/block", content=json.dumps({"reason": reason}),
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request"
    assert await store.worker_block("W-nul") is None


async def test_logging_in_with_an_unpaired_surrogate_is_a_422(admin: httpx.AsyncClient) -> None:
    reply = await admin.post(
        "/admin/api/session", content='{"token": "\\ud800"}', headers={"content-type": "application/json"},
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_request"
