"""How the CLI finds servers: live instances and run owners from the database, ports it must not take, and the
commands that steer runs without a server (stop of an unknown run, status's owner column)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from server.cli import app
from server.cli_servers import mturk_endpoint, owners, port_holder
from server.settings import Settings
from server.store import Store
from server.store.leases import InstanceRow, LeaseStore
from tests.support.server import LiveServer, free_port

RUNNER = CliRunner()


def _instance(instance_id: str, port: int, *, alive: bool, sandbox: bool) -> InstanceRow:
    now = time.time()
    return InstanceRow(id=instance_id, url=f"http://127.0.0.1:{port}", public_url=f"http://127.0.0.1:{port}",
                       sandbox=sandbox, pid=1, started_at=now - 60, seen_until=now + (30 if alive else -30))


async def test_the_builtin_sandbox_endpoint_is_the_live_sandbox_server_else_the_settings_listening_address(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=8531)
    leases = LeaseStore(store)
    await leases.register(_instance("plain", 8532, alive=True, sandbox=False))
    await leases.register(_instance("gone", 8533, alive=False, sandbox=True))
    assert await mturk_endpoint(store, settings, "builtin") == "http://127.0.0.1:8531/sandbox/mturk"
    await leases.register(_instance("sandboxed", 8534, alive=True, sandbox=True))
    assert await mturk_endpoint(store, settings, "builtin") == "http://127.0.0.1:8534/sandbox/mturk"
    override = "http://127.0.0.1:9/sandbox/mturk"
    assert await mturk_endpoint(store, settings, "builtin", override) == override
    assert "mturk-requester-sandbox" in await mturk_endpoint(store, settings, "sandbox")


async def test_a_run_is_owned_only_while_its_lease_holds_and_its_server_renews(store: Store) -> None:
    leases = LeaseStore(store)
    for run_id in ("held", "lapsed", "orphaned", "free"):
        await store.ensure_run(run_id, task_module="tests.hits.tasks:chat2", options={})
    await leases.register(_instance("alive", 8541, alive=True, sandbox=True))
    now = time.time()
    assert await leases.acquire("held", owner="alive", now=now, until=now + 30)
    assert await leases.acquire("lapsed", owner="alive", now=now, until=now - 1)
    assert await leases.acquire("orphaned", owner="dead-one", now=now, until=now + 30)  # no instance row renews it
    found = await owners(store)
    assert found["held"].alive and found["held"].describe() == "alive (alive)"
    assert not found["lapsed"].alive and found["lapsed"].describe() == "alive (dead)"
    assert not found["orphaned"].alive and found["orphaned"].describe() == "dead-one (dead)"
    assert not found["free"].alive and found["free"].describe() == "none"


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_a_free_port_has_no_holder_and_a_taken_one_is_named_with_what_to_do(held_port: int) -> None:
    assert port_holder("127.0.0.1", free_port()) is None
    holder = port_holder("127.0.0.1", held_port)
    assert holder is not None and "not Parley" in holder and "--port" in holder and str(held_port) in holder


def test_a_port_held_by_a_parley_server_not_alive_in_this_database_is_named_as_such(live: LiveServer) -> None:
    holder = port_holder("127.0.0.1", live.port)
    assert holder is not None and "a Parley server that is not registered as alive in this database" in holder


def _env(db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {"PARLEY_DATABASE_URL": db_url, "PARLEY_DATA_DIR": str(data_dir), "PARLEY_PROVIDER": "builtin",
            "PARLEY_PUBLIC_URL": "", "COLUMNS": "200", **extra}


def test_parley_run_with_no_live_server_refuses_a_port_another_program_holds(
    db_url: str, tmp_path: Path, held_port: int
) -> None:
    result = RUNNER.invoke(app, ["run", "tests.hits.tasks:chat2", "--run-id", "busy", "--port", str(held_port)],
                           env=_env(db_url, tmp_path))
    assert result.exit_code == 1, result.output
    assert f"port {held_port} on 127.0.0.1 is taken" in result.output and "not Parley" in result.output
    assert "choose another --port" in result.output
    status = RUNNER.invoke(app, ["--endpoint-url", "http://127.0.0.1:9/sandbox/mturk", "status"],
                           env=_env(db_url, tmp_path))
    assert status.exit_code == 0 and "busy" not in status.output  # nothing was written


def test_stopping_a_run_this_database_does_not_know_says_so(db_url: str, tmp_path: Path) -> None:
    for command in ("stop", "expire"):
        result = RUNNER.invoke(app, [command, "nope"], env=_env(db_url, tmp_path))
        assert result.exit_code == 1 and "there is no run nope in this database" in result.output, result.output


def test_status_shows_each_runs_owner_and_whether_it_is_alive(db_url: str, tmp_path: Path) -> None:
    async def lease() -> None:
        store = Store(db_url)
        await store.open()
        try:
            leases = LeaseStore(store)
            await leases.register(_instance("srv-a", 8551, alive=True, sandbox=True))
            now = time.time()
            for run_id, owner in (("owned", "srv-a"), ("abandoned", "srv-gone"), ("idle", "")):
                await store.ensure_run(run_id, task_module="tests.hits.tasks:chat2", options={})
                if owner:
                    await leases.acquire(run_id, owner=owner, now=now, until=now + 30)
        finally:
            await store.close()

    asyncio.run(lease())
    result: Any = RUNNER.invoke(app, ["--endpoint-url", "http://127.0.0.1:9/sandbox/mturk", "status"],
                                env=_env(db_url, tmp_path))
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "srv-a (alive)" in rows["owned"] and "srv-gone (dead)" in rows["abandoned"]
    assert "none" in rows["idle"].split("│")[4]
