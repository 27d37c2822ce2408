"""Parley past one machine, for tests: N real server processes behind a real load balancer.

`Cluster` starts `size` Parley processes (`python -m server.serving`, see `tests/support/process.py`) on one
PostgreSQL database, one data directory and one Redis (a key prefix of the cluster's own, so clusters share
the one Redis), with a short run lease; every instance is told that workers reach it through the load
balancer (`PARLEY_PUBLIC_URL`). In front of them a real Caddy (`caddy run` on a generated Caddyfile)
round-robins over the instances, checks `/healthz` every half second, retries a request on a live instance
when the one it picked refuses the connection (a SIGKILLed process), and passes websockets through.

    with Cluster(data_dir=tmp_path, db_url=pg_url, runs=RUNS) as cluster:
        cluster.url                 # the load balancer: what workers' browsers and boto3 talk to
        cluster.ids[1]              # instance 1's id, as /healthz reports it
        cluster.kill(1)             # SIGKILL, as in a crash
        cluster.wait_routed_only_to_live()
        index = await cluster.wait_owner("chat", among=cluster.live)
        cluster.open_requests()     # {instance index: requests (websockets) Caddy has open to it}

Everything that waits is bounded (60 s by default) and says what it waited for when it gives up.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
import pytest
import redis

from server.store import Store
from server.store.leases import LeaseStore
from tests.support.process import ROOT, ServerProcess
from tests.support.server import free_port

CADDY = os.environ.get("PARLEY_CADDY", "/usr/bin/caddy")
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WAIT_S = 60.0
T = TypeVar("T")


def under_ci() -> bool:
    """CI (`.ci/run`) sets PARLEY_REQUIRE_BROWSER=1: there, a missing Caddy, Redis or Chromium is an error."""
    return os.environ.get("PARLEY_REQUIRE_BROWSER") == "1"


def missing_cluster_parts(db_url: str) -> list[str]:
    """What a cluster needs and this machine lacks, each said with how to get it."""
    missing = []
    if not Path(CADDY).exists() and not shutil.which("caddy"):
        missing.append(f"Caddy ({CADDY}): apt-get install -y caddy (.ci/run does)")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as error:
        missing.append(
            f"Redis at {REDIS_URL} ({error}): redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 "
            '--save "" --appendonly no (.ci/run starts it)'
        )
    if not db_url.startswith("postgresql"):
        missing.append("PostgreSQL: set PARLEY_TEST_DATABASE_URL (a cluster shares one PostgreSQL database)")
    return missing


def require_cluster_parts(db_url: str) -> None:
    """Skip the test when Caddy, Redis or PostgreSQL is missing; under CI, fail it instead."""
    missing = missing_cluster_parts(db_url)
    if not missing:
        return
    text = "a cluster test needs " + "; ".join(missing)
    if under_ci():
        pytest.fail(text)
    pytest.skip(text)


def caddy_executable() -> str:
    return CADDY if Path(CADDY).exists() else shutil.which("caddy") or CADDY


def caddyfile(*, port: int, admin_port: int, upstreams: list[str], state_dir: Path) -> str:
    """A Caddyfile balancing http://127.0.0.1:{port} over `upstreams` (host:port each)."""
    return f"""{{
	admin 127.0.0.1:{admin_port}
	auto_https off
	storage file_system {{
		root {state_dir}
	}}
}}

http://127.0.0.1:{port} {{
	reverse_proxy {" ".join(upstreams)} {{
		lb_policy round_robin
		# A request whose instance refuses the connection (killed) is tried on the next one.
		lb_try_duration 10s
		lb_try_interval 100ms
		fail_duration 10s
		max_fails 1
		health_uri /healthz
		health_interval 500ms
		health_timeout 2s
		health_status 200
		flush_interval -1
	}}
}}
"""


class Caddy:
    """A real Caddy process serving a generated Caddyfile."""

    def __init__(self, *, directory: Path, upstreams: list[str]) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.directory = directory
        self.upstreams = upstreams
        self.config = directory / "Caddyfile"
        self.log = directory / "caddy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = WAIT_S) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            caddyfile(port=self.port, admin_port=self.admin_port, upstreams=self.upstreams,
                      state_dir=self.directory / "state")
        )
        home = str(self.directory / "home")
        env = {**os.environ, "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [caddy_executable(), "run", "--config", str(self.config), "--adapter", "caddyfile"],
                cwd=self.directory, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"caddy exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling a process that has no other way to say it is up
        raise RuntimeError(f"caddy did not answer {self.base}/healthz within {timeout:.0f}s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def upstream_status(self) -> list[dict[str, object]]:
        """Caddy's own view of its upstreams (admin API): address, num_requests, fails."""
        reply = httpx.get(f"http://127.0.0.1:{self.admin_port}/reverse_proxy/upstreams", timeout=5)
        reply.raise_for_status()
        status: list[dict[str, object]] = reply.json()
        return status

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Cluster:
    """`size` Parley instances on one database, data directory and Redis prefix, behind one Caddy."""

    def __init__(
        self, *, data_dir: Path, db_url: str, runs: dict[str, str], size: int = 3, lease_s: float = 3.0,
        redis_url: str = REDIS_URL, redis_prefix: str = "", **env: str,
    ) -> None:
        self.data_dir = data_dir
        self.db_url = db_url
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix or f"parley-test-{secrets.token_hex(4)}"
        self.lease_s = lease_s
        ports = [free_port() for _ in range(size)]
        self.caddy = Caddy(directory=data_dir / "caddy", upstreams=[f"127.0.0.1:{p}" for p in ports])
        self.env = {
            "PARLEY_REDIS_URL": redis_url,
            "PARLEY_REDIS_PREFIX": self.redis_prefix,
            "PARLEY_LEASE_S": str(lease_s),
            "PARLEY_PUBLIC_URL": self.caddy.base,
            **env,
        }
        self.instances = [
            ServerProcess(port=port, data_dir=data_dir, db_url=db_url, runs=runs, **self.env) for port in ports
        ]
        self.ids: list[str] = [""] * size  # each instance's id (/healthz `instance`), once started

    # ---- where things are ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The load balancer's address: the one workers, pages and boto3 use."""
        return self.caddy.base

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"

    @property
    def size(self) -> int:
        return len(self.instances)

    @property
    def live(self) -> list[int]:
        """Indices of the instances whose process is running."""
        return [i for i, server in enumerate(self.instances) if self.alive(i)]

    def alive(self, i: int) -> bool:
        proc = self.instances[i].proc
        return proc is not None and proc.poll() is None

    def base(self, i: int) -> str:
        """Instance i's own address, bypassing the load balancer."""
        return self.instances[i].base

    def index(self, instance_id: str) -> int:
        """Which instance has this id (ValueError if none of this cluster's)."""
        return self.ids.index(instance_id)

    def logs(self) -> str:
        """The tail of every instance's log and Caddy's, for an assertion message."""
        parts = []
        for i, server in enumerate(self.instances):
            text = server.log.read_text(errors="replace") if server.log.exists() else ""
            parts.append(f"--- instance {i} ({self.ids[i]}) ---\n{text[-3000:]}")
        if self.caddy.log.exists():
            parts.append(f"--- caddy ---\n{self.caddy.log.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    # ---- life ---------------------------------------------------------------------------------

    def start(self, timeout: float = WAIT_S) -> Cluster:
        """Start every instance (the first alone: it makes the schema and registers the runs), then Caddy."""
        try:
            self._start_instance(0, timeout)
            with ThreadPoolExecutor(max_workers=max(1, self.size - 1)) as pool:
                list(pool.map(lambda i: self._start_instance(i, timeout), range(1, self.size)))
            self.caddy.start(timeout)
            self.wait_routed_only_to_live(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop Caddy, then every instance (SIGTERM, SIGKILL after 15 s), then drop the cluster's Redis keys."""
        self.caddy.stop()
        with ThreadPoolExecutor(max_workers=self.size) as pool:
            list(pool.map(lambda server: server.stop(), self.instances))
        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=5)
            keys = list(client.scan_iter(match=f"{self.redis_prefix}*", count=500))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass  # Redis itself is gone (a test restarted or stopped it): nothing of ours is left in it

    def kill(self, i: int) -> None:
        """SIGKILL instance i: no shutdown handler runs, its leases lapse only after `lease_s`."""
        self.instances[i].kill()

    def terminate(self, i: int) -> None:
        """Stop instance i cleanly (SIGTERM): it hands its leases back at once."""
        self.instances[i].stop()

    def restart(self, i: int, timeout: float = WAIT_S) -> str:
        """Start instance i again on its address (after kill or terminate); its new id. Being at the dead
        process's address, it retires that one's row and takes its leases back at once (server/ownership.py)."""
        self.instances[i].stop()
        self._start_instance(i, timeout)
        return self.ids[i]

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _start_instance(self, i: int, timeout: float) -> None:
        server = self.instances[i]
        server.start(timeout=timeout)
        self.ids[i] = str(httpx.get(f"{server.base}/healthz", timeout=10).json()["instance"])

    # ---- through the load balancer ------------------------------------------------------------

    def instance_behind_lb(self, timeout: float = 15.0) -> int:
        """The index of the instance that answered one GET /healthz sent to the load balancer."""
        reply = httpx.get(f"{self.url}/healthz", timeout=timeout)
        assert reply.status_code == 200, f"the load balancer answered /healthz with {reply.status_code}: {reply.text}"
        return self.index(str(reply.json()["instance"]))

    def wait_routed_only_to_live(self, timeout: float = WAIT_S) -> None:
        """Wait until the load balancer sends requests to every live instance and to no other, as seen by
        3 x size consecutive /healthz requests through it."""

        def balanced() -> bool:
            try:
                seen = [self.instance_behind_lb() for _ in range(3 * self.size)]
            except (httpx.HTTPError, AssertionError, ValueError):
                return False  # a request failed or an unknown instance answered: not settled yet
            return set(seen) == set(self.live)

        self.wait_until(balanced, f"the load balancer to route to exactly the live instances {self.live}", timeout)

    def open_requests(self) -> dict[int, int]:
        """instance index -> requests Caddy has open to it now. A websocket is one open request for its whole
        life, so once the pages are idle this counts each instance's sockets."""
        by_address = {f"127.0.0.1:{server.port}": i for i, server in enumerate(self.instances)}
        counts = dict.fromkeys(range(self.size), 0)
        for upstream in self.caddy.upstream_status():
            address = str(upstream["address"])
            if address in by_address:
                counts[by_address[address]] = int(str(upstream["num_requests"]))
        return counts

    # ---- runs ---------------------------------------------------------------------------------

    async def owner(self, run_id: str) -> int | None:
        """The index of the instance holding the run's lease (None: unowned, or owned outside this cluster)."""
        store = Store(self.db_url)
        await store.open()
        try:
            owner, _until = (await LeaseStore(store).leases()).get(run_id, ("", 0.0))
        finally:
            await store.close()
        return self.ids.index(owner) if owner in self.ids else None

    async def wait_owner(self, run_id: str, *, among: list[int] | None = None, timeout: float = WAIT_S) -> int:
        """Wait until one of the instances `among` (default: any live one) holds the run's lease; its index."""
        wanted = set(self.live if among is None else among)

        async def held() -> list[int]:  # a list, so that instance 0 counts as found
            owner = await self.owner(run_id)
            return [owner] if owner in wanted else []

        found = await self.eventually(held, f"instance {sorted(wanted)} to hold the lease of run {run_id}", timeout)
        return found[0]

    # ---- waiting ------------------------------------------------------------------------------

    def wait_until(self, check: Callable[[], T], what: str, timeout: float = WAIT_S) -> T:
        """Poll `check()` until it returns something truthy (every 100 ms, up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")
            time.sleep(0.1)  # the processes have no event to wait on from here: poll, bounded

    async def eventually(self, check: Callable[[], Awaitable[T]], what: str, timeout: float = WAIT_S) -> T:
        """Await `check()` until it returns something truthy (every 100 ms, up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")
            await asyncio.sleep(0.1)


__all__ = ["CADDY", "REDIS_URL", "ROOT", "Caddy", "Cluster", "missing_cluster_parts", "require_cluster_parts",
           "under_ci"]
