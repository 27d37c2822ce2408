"""`parley run`, `parley stop` and `parley cleanup` as real processes next to real servers on one database:
the run is served by the live server (or one the CLI starts), never by a second listener, and stopping it
leaves no HIT open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from server.sandbox import build_sandbox
from server.store import Store
from server.store.leases import LeaseStore
from tests.hits.harness import mturk, open_hits
from tests.support.process import ROOT, ServerProcess
from tests.support.server import free_port, run_in_thread

PARLEY = Path(sys.executable).with_name("parley")
WAIT_S = 60.0  # every wait on a real process: generous, for a busy 2-core machine
TASK = "tests.hits.tasks:chat2"


def bounded(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll `check` until it gives something truthy (processes and MTurk state have no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.1)
    return value


def cli_env(db_url: str, data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a `parley` command (and of the server it may start) on this database."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PARLEY_"))}
    return {
        **inherited, "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(ROOT), "COLUMNS": "200",
        "PARLEY_DATABASE_URL": db_url, "PARLEY_DATA_DIR": str(data_dir), "PARLEY_PROVIDER": "builtin",
        "PARLEY_PORT": str(port), "PARLEY_LOG_LEVEL": "WARNING", "PARLEY_MTURK_SYNC_S": "0.5",
        "PARLEY_GC_THRESHOLDS": "", "PYTHONUNBUFFERED": "1", **extra,
    }


class CliProcess:
    """`parley ARGS` as a process of its own, its output in a file that tests wait on."""

    def __init__(self, args: list[str], env: dict[str, str], out: Path) -> None:
        self.out = out
        with out.open("wb") as sink:
            self.proc = subprocess.Popen([str(PARLEY), *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                         stdout=sink, stderr=subprocess.STDOUT)

    def answer(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    @property
    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = WAIT_S) -> str:
        def seen() -> bool:
            if self.proc.poll() is not None and text not in self.output:
                raise AssertionError(f"parley exited ({self.proc.returncode}) before printing {text!r}:\n{self.output}")
            return text in self.output

        bounded(f"parley to print {text!r} (so far: {self.output[-2000:]!r})", seen, timeout)
        return self.output

    def interrupt(self, timeout: float = WAIT_S, answer: str | None = None) -> int:
        """Ctrl-C, as the terminal sends it to the command, and the answer to its question if given (else its
        input closes); its exit code."""
        self.proc.send_signal(signal.SIGINT)
        if answer is not None:
            self.wait_for("Stop run")
            self.answer(answer)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=timeout)

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()


def parley(args: list[str], env: dict[str, str], timeout: float = WAIT_S) -> subprocess.CompletedProcess[str]:
    """`parley ARGS` to its end; its standard input is empty, so a question it asks is answered by its default."""
    return subprocess.run([str(PARLEY), *args], cwd=ROOT, env=env, input="", capture_output=True, text=True,
                          timeout=timeout)


def started_pid(output: str) -> int | None:
    found = re.search(r"started one \(pid (\d+)\)", output)
    return int(found.group(1)) if found else None


def end_pid(pid: int) -> None:
    """End a server a `parley run` started (it runs in a session of its own): SIGTERM, as `parley run` itself
    does; SIGKILL if that did not end it within the bound, so no test leaves a server behind, and then fail."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _gone(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"server pid {pid} did not exit within 30s of SIGTERM (killed); see its log")


def _gone(pid: int) -> bool:
    """No such process, or a zombie (it exited; its parent, gone, left the reaping to init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        return True
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def server_process(db_url: str, data_dir: Path, **env: str) -> Iterator[ServerProcess]:
    port = free_port()
    server = ServerProcess(port=port, data_dir=data_dir, db_url=db_url, runs={}, PARLEY_PORT=str(port),
                           PARLEY_MTURK_SYNC_S="0.5", **env)
    server.start(timeout=WAIT_S)
    try:
        yield server
    finally:
        server.stop()


def served_by(output: str, run_id: str) -> tuple[str, str]:
    """(instance id, task page URL) from `parley run`'s "is served by" line."""
    found = re.search(rf"Run {re.escape(run_id)} is served by (\S+) at (\S+)", output)
    assert found, output
    return found.group(1), found.group(2)


def test_parley_run_against_a_running_server_is_served_there_with_no_second_listener(
    db_url: str, tmp_path: Path
) -> None:
    with server_process(db_url, tmp_path) as server:
        unused = free_port()
        env = cli_env(db_url, tmp_path, unused)
        ran = parley(["run", TASK, "--run-id", "there", "--detach"], env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        _, page = served_by(ran.stdout, "there")
        assert page == f"{server.base}/task/there" and "started one" not in ran.stdout
        assert f"{server.base}/sandbox/worker" in ran.stdout and "parley stop there" in ran.stdout
        assert not listening(unused)  # no second server
        assert httpx.get(f"{server.base}/task/there/info").status_code == 200
        client = mturk(f"{server.base}/sandbox/mturk")
        bounded("the server to publish run there's HITs", lambda: open_hits(client, "there"))

        stopped = parley(["stop", "there"], env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        expired = re.search(r"Run there stopped\. Expired (\d+) HIT\(s\): (\d+) by its server (\S+), 0 by this command",
                            stopped.stdout)
        assert expired and expired.group(1) == expired.group(2), stopped.stdout  # the owner expired them all
        assert open_hits(client, "there") == []
        assert parley(["stop", "nope"], env).returncode == 1


def test_parley_run_with_on_exit_stop_interrupted_leaves_no_open_hit(db_url: str, tmp_path: Path) -> None:
    with server_process(db_url, tmp_path) as server:
        cli = CliProcess(["run", TASK, "--run-id", "ctrlc", "--on-exit", "stop"], cli_env(db_url, tmp_path, 9),
                         tmp_path / "run.out")
        try:
            cli.wait_for("Run ctrlc is served by")
            client = mturk(f"{server.base}/sandbox/mturk")
            bounded("the server to publish run ctrlc's HITs", lambda: open_hits(client, "ctrlc"))
            assert cli.interrupt() == 0, cli.output
        finally:
            cli.end()
        assert re.search(r"Run ctrlc stopped\. Expired \d+ HIT\(s\)", cli.output), cli.output
        assert open_hits(client, "ctrlc") == []
        assert listening(server.port)  # a server the command did not start keeps serving


def test_ctrl_c_asks_whether_to_stop_the_run_and_no_answer_leaves_it_running(db_url: str, tmp_path: Path) -> None:
    with server_process(db_url, tmp_path) as server:
        env = cli_env(db_url, tmp_path, 9)
        client = mturk(f"{server.base}/sandbox/mturk")
        for run_id, answer in (("asked-yes", "y"), ("asked-none", None)):
            cli = CliProcess(["run", TASK, "--run-id", run_id], env, tmp_path / f"{run_id}.out")
            try:
                cli.wait_for(f"Run {run_id} is served by")
                bounded(f"the server to publish run {run_id}'s HITs", lambda r=run_id: open_hits(client, r))
                assert cli.interrupt(answer=answer) == 0, cli.output
            finally:
                cli.end()
        assert "Run asked-yes stopped. Expired" in (tmp_path / "asked-yes.out").read_text()
        assert open_hits(client, "asked-yes") == []
        left = (tmp_path / "asked-none.out").read_text()
        assert "Run asked-none keeps running on" in left and "parley stop asked-none" in left, left
        assert open_hits(client, "asked-none")


def test_parley_run_with_no_server_starts_one_and_leave_keeps_it_serving(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(db_url, tmp_path, port)
    cli = CliProcess(["run", TASK, "--run-id", "alone", "--on-exit", "leave"], env, tmp_path / "run.out")
    pid = None
    try:
        output = cli.wait_for("Run alone is served by")
        pid = started_pid(output)
        assert pid is not None and f"{tmp_path / f'server-{port}.log'}" in output, output
        assert cli.interrupt() == 0, cli.output
        assert f"pid {pid}" in cli.output and "parley stop alone" in cli.output
        assert httpx.get(f"http://127.0.0.1:{port}/task/alone/info").status_code == 200  # still served
        client = mturk(f"http://127.0.0.1:{port}/sandbox/mturk")
        bounded("the server to publish run alone's HITs", lambda: open_hits(client, "alone"))
        stopped = parley(["stop", "alone"], env)
        assert stopped.returncode == 0 and "Run alone stopped" in stopped.stdout, stopped.stdout + stopped.stderr
        assert open_hits(client, "alone") == []
    finally:
        cli.end()
        pid = pid or started_pid(cli.output)
        if pid is not None:
            end_pid(pid)


def test_parley_run_detached_then_stopped_ends_nothing_but_the_run(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(db_url, tmp_path, port)
    ran = parley(["run", TASK, "--run-id", "bg", "--detach"], env)
    pid = started_pid(ran.stdout)
    try:
        assert ran.returncode == 0 and pid is not None, ran.stdout + ran.stderr
        assert "parley stop bg" in ran.stdout and f"pid {pid}" in ran.stdout
        client = mturk(f"http://127.0.0.1:{port}/sandbox/mturk")
        bounded("the server to publish run bg's HITs", lambda: open_hits(client, "bg"))
        stopped = parley(["stop", "bg"], env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert re.search(r"Expired \d+ HIT\(s\): \d+ by its server", stopped.stdout), stopped.stdout
        assert open_hits(client, "bg") == [] and listening(port)
    finally:
        if pid is not None:
            end_pid(pid)


async def _instance_gone(db_url: str, instance_id: str) -> bool:
    store = Store(db_url)
    await store.open()
    try:
        return instance_id not in {i.id for i in await LeaseStore(store).live_instances(time.time())}
    finally:
        await store.close()


def test_cleanup_lists_and_expires_the_hits_of_a_run_whose_server_was_killed(db_url: str, tmp_path: Path) -> None:
    with server_process(db_url, tmp_path, PARLEY_LEASE_S="3") as server:
        env = cli_env(db_url, tmp_path, free_port())
        ran = parley(["run", TASK, "--run-id", "crashed", "--detach"], env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        owner, _ = served_by(ran.stdout, "crashed")
        published = bounded("the server to publish run crashed's HITs",
                            lambda: open_hits(mturk(f"{server.base}/sandbox/mturk"), "crashed"))
        server.kill()
    bounded(f"instance {owner} to stop counting as alive", lambda: asyncio.run(_instance_gone(db_url, owner)))
    # The built-in sandbox died with its server: serve its saved state alone, as nobody's server.
    sandbox = FastAPI()
    sandbox.include_router(build_sandbox(state_path=tmp_path / "sandbox.json").router)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/sandbox/mturk"
    with run_in_thread(sandbox, port, name="sandbox"):
        listed = parley(["--endpoint-url", endpoint, "cleanup"], env)
        assert f"Expire these {len(published)} HITs?" in listed.stdout, listed.stdout  # asked; nobody answered
        for hit in published:
            assert hit["HITId"] in listed.stdout
        assert f"no live owner (owner: {owner} (dead))" in listed.stdout
        expired = parley(["--endpoint-url", endpoint, "cleanup", "--yes"], env)
        assert expired.returncode == 0 and f"Expired {len(published)} HIT(s)" in expired.stdout, expired.stdout
        assert open_hits(mturk(endpoint), "crashed") == []


def test_a_run_stopped_from_another_terminal_ends_the_progress_and_the_server_parley_run_started(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(db_url, tmp_path, port)
    cli = CliProcess(["run", TASK, "--run-id", "watched"], env, tmp_path / "run.out")
    pid = None
    try:
        pid = started_pid(cli.wait_for("Run watched is served by"))
        client = mturk(f"http://127.0.0.1:{port}/sandbox/mturk")
        bounded("the server to publish run watched's HITs", lambda: open_hits(client, "watched"))
        stopped = parley(["stop", "watched"], env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        by_owner = r"Expired \d+ HIT\(s\): \d+ by its server \S+, 0 by this command"
        assert re.search(by_owner, stopped.stdout), stopped.stdout
        assert cli.proc.wait(timeout=WAIT_S) == 0, cli.output
        assert "Run watched is stopped (stopped from elsewhere)" in cli.output
        assert f"Stopped the server this command started (pid {pid})" in cli.output and not listening(port)
    finally:
        cli.end()
        pid = pid or started_pid(cli.output)
        if pid is not None:
            end_pid(pid)


def test_a_run_stopped_while_no_server_runs_has_its_hits_expired_by_the_next_server(
    db_url: str, tmp_path: Path
) -> None:
    with server_process(db_url, tmp_path) as server:
        env = cli_env(db_url, tmp_path, server.port)
        assert parley(["run", TASK, "--run-id", "offline", "--detach"], env).returncode == 0
        bounded("the server to publish run offline's HITs",
                lambda: open_hits(mturk(f"{server.base}/sandbox/mturk"), "offline"))
    stopped = parley(["stop", "offline"], env)  # no server: nobody serves the sandbox its HITs are on
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "Run offline stopped. No Parley server of this database is alive" in stopped.stdout, stopped.stdout
    status = parley(["--endpoint-url", "http://127.0.0.1:9/sandbox/mturk", "status"], env).stdout
    assert re.search(r"offline\s*│[^│]*│\s*stopped\s*│\s*none", status), status  # stopped, and nobody owns it
    with server_process(db_url, tmp_path) as again:
        client = mturk(f"{again.base}/sandbox/mturk")
        bounded("the next server to expire run offline's HITs", lambda: open_hits(client, "offline") == [])
