"""How the CLI finds, starts and stops Parley servers: through the database's instance table, never a guessed port.

A serving process registers itself (`server/store/leases.py`) and takes the lease of every active run; the
CLI registers runs in the database and waits for an owner. When no server serves the database, `parley run`
starts one as a child process in a session of its own, so a Ctrl-C in the terminal reaches only the CLI.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from server.providers.mturk import endpoint_for
from server.settings import Settings
from server.store import Store
from server.store.leases import InstanceRow, LeaseStore

WAIT_S = 60.0  # how long the CLI waits for a server to take a run, or to expire a stopped run's HITs
POLL_S = 0.25  # the instance table offers nothing to wait on but its rows: read them this often


class ServerError(RuntimeError):
    """No server serves a run as asked: the message says what happened and what to do."""


@dataclass(frozen=True)
class Owner:
    """Who holds a run's lease now: an instance id ("" for nobody) and, when it is alive, its row."""

    instance_id: str
    instance: InstanceRow | None

    @property
    def alive(self) -> bool:
        return self.instance is not None

    def describe(self) -> str:
        if not self.instance_id:
            return "none"
        return f"{self.instance_id} ({'alive' if self.alive else 'dead'})"


async def live_instances(store: Store) -> list[InstanceRow]:
    return await LeaseStore(store).live_instances(time.time())


def sandbox_instance(instances: list[InstanceRow]) -> InstanceRow | None:
    return next((i for i in instances if i.sandbox), None)


async def mturk_endpoint(store: Store, settings: Settings, provider: str, endpoint_url: str = "") -> str:
    """The requester endpoint: --endpoint-url, else the provider's; for the built-in sandbox, the live
    instance serving it, else this machine's listening address from the settings."""
    if endpoint_url or provider != "builtin":
        return endpoint_for(provider, public_url=settings.public_url, endpoint_url=endpoint_url)
    server = sandbox_instance(await live_instances(store))
    return endpoint_for(provider, public_url=server.url if server else settings.listen_url)


async def owners(store: Store) -> dict[str, Owner]:
    """run id -> who holds its lease; a holder whose lease lapsed or whose instance stopped renewing is dead."""
    now = time.time()
    alive = {i.id: i for i in await LeaseStore(store).live_instances(now)}
    return {
        run_id: Owner(owner, alive.get(owner) if owner and until >= now else None)
        for run_id, (owner, until) in (await LeaseStore(store).leases()).items()
    }


async def owner_of(store: Store, run_id: str) -> Owner:
    return (await owners(store)).get(run_id, Owner("", None))


async def wait_for_owner(store: Store, run_id: str, *, child: subprocess.Popen[bytes] | None = None,
                         log: Path | None = None, timeout: float = WAIT_S) -> InstanceRow:
    """Wait (bounded) until a live instance holds the run's lease and, when it runs on this machine, answers at
    its address (it takes leases during its start-up, before it listens); the child, if any, must stay up."""
    deadline = time.monotonic() + timeout
    while True:
        owner = await owner_of(store, run_id)
        if owner.instance is not None and await _answers(owner.instance):
            return owner.instance
        if child is not None and child.poll() is not None:
            raise ServerError(f"the server this command started exited with code {child.returncode} before taking "
                              f"run {run_id}; its log {log} says:\n{_tail(log)}")
        if time.monotonic() > deadline:
            where = f"; the server's log is {log}" if log else ""
            if owner.instance is not None:
                raise ServerError(f"server {owner.instance.id} holds run {run_id} but did not answer at "
                                  f"{owner.instance.url}/healthz within {timeout:.0f}s{where}")
            raise ServerError(
                f"no live Parley server took run {run_id} within {timeout:.0f}s (its owner: {owner.describe()})"
                f"{where}. The run stays registered: a server started later serves it, or `parley stop {run_id}`."
            )
        await asyncio.sleep(POLL_S)


async def _answers(instance: InstanceRow) -> bool:
    """Whether the instance answers at the address it registered; not checked for another machine's instance,
    whose listening address may mean nothing here."""
    if instance.host != socket.gethostname()[:255]:
        return True
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            health = (await client.get(f"{instance.url.rstrip('/')}/healthz")).json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(health, dict) and health.get("instance") == instance.id


def _tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not log.exists():
        return "(no log)"
    return log.read_text(errors="replace")[-chars:]


# ---- the port and the child server ------------------------------------------------------------------


def port_holder(host: str, port: int) -> str | None:
    """None when `host:port` is free to listen on; else what holds it, and what to do."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no holder
        try:
            probe.bind((host, port))
            return None
        except OSError as exc:
            reason = exc.strerror or str(exc)
    try:
        health = httpx.get(f"{listen_url(host, port)}/healthz", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        health = None
    if isinstance(health, dict) and "database" in health:
        return (f"port {port} on {host} is held by a Parley server that is not registered as alive in this "
                f"database ({health['database']}): it serves another database or data directory, or runs an "
                f"older Parley. Stop it, point PARLEY_DATABASE_URL at its database, or choose another --port.")
    return (f"port {port} on {host} is taken ({reason}) by a program that is not Parley: choose another --port "
            f"(or PARLEY_PORT), or stop that program (`ss -ltnp 'sport = :{port}'` names it).")


@dataclass
class Child:
    """A server this command started: its process, where it listens and where it logs."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate(self, timeout: float = 30.0) -> bool:
        """SIGTERM (a clean shutdown: it retires its instance and releases its leases), SIGKILL past `timeout`;
        False when it had to be killed (its leases then lapse on their own)."""
        if self.proc.poll() is not None:
            return True
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return False


def start_server(settings: Settings, *, host: str, port: int, provider: str) -> Child:
    """`python -m server.serving` (uvicorn with Parley's options, server/serving.py) in a new session, with this
    environment, serving no demo runs."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.data_dir / f"server-{port}.log").resolve()
    env = {**os.environ, "PARLEY_HOST": host, "PARLEY_PORT": str(port), "PARLEY_PROVIDER": provider,
           "PARLEY_DEMO_RUNS": "{}"}
    command = [sys.executable, "-m", "server.serving", "--host", host, "--port", str(port)]
    with log.open("ab") as sink:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Child(proc=proc, url=listen_url(host, port), log=log)


def listen_url(host: str, port: int) -> str:
    """The address of `host:port` as a client on this machine reaches it (as `Settings.listen_url`)."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
