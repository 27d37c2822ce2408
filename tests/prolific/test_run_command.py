"""`parley run worlds.chat_demo --provider prolific` as a real process on the built-in Prolific with no
configuration beyond the database: like `parley run` on MTurk, it drives the live server of the database
(registering the run for it), or starts one when none runs; Ctrl-C stops the run's study."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from typer.testing import CliRunner

from server.cli import app
from tests.prolific.conftest import TOKEN
from tests.prolific.helpers import take_place
from tests.support.server import free_port
from tests.test_cli_run import (
    CliProcess,
    bounded,
    cli_env,
    end_pid,
    listening,
    parley,
    served_by,
    server_process,
    started_pid,
)

TASK = "worlds.chat_demo"


def studies(base: str, run_id: str) -> dict[str, str]:
    """The run's studies on the built-in Prolific served at `base`: id -> status."""
    listed = httpx.get(f"{base}/sandbox/prolific/api/v1/studies/", headers=TOKEN, timeout=10).json()["results"]
    return {str(s["id"]): str(s["status"]) for s in listed if s["internal_name"] == f"parley:{run_id}"}


def published(output: str, run_id: str) -> str:
    found = re.search(rf"Study (\S+) of run {re.escape(run_id)} takes participants", output)
    assert found, output
    return found.group(1)


def test_parley_run_provider_prolific_starts_a_server_recruits_chat_demo_and_ctrl_c_stops_its_study(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(db_url, tmp_path, port)
    del env["PARLEY_PROVIDER"]  # the default: the built-in MTurk and the built-in Prolific
    cli = CliProcess(["run", TASK, "--provider", "prolific", "--run-id", "chat-p", "--on-exit", "stop"], env,
                     tmp_path / "run.out")
    pid = None
    try:
        base = f"http://127.0.0.1:{port}"
        # The participant page is printed just after the study is found published: wait for it, not the line before.
        output = cli.wait_for(f"{base}/sandbox/prolific/participant")
        assert "takes participants" in output, output
        pid = started_pid(output)
        assert pid is not None, output
        _, page = served_by(output, "chat-p")
        assert page == f"{base}/task/chat-p"
        study = published(output, "chat-p")
        assert studies(base, "chat-p") == {study: "ACTIVE"}
        with httpx.Client(base_url=base, timeout=10) as site:
            params = take_place(site, study, "PID-cli")
            landed = site.get("/task/chat-p", params=params)
        assert landed.status_code == 200 and "<html" in landed.text.lower()
        assert cli.interrupt() == 0, cli.output
        assert "Run chat-p stopped; its study takes nobody new" in cli.output, cli.output
        assert f"Stopped the server this command started (pid {pid})" in cli.output, cli.output
        pid = None
    finally:
        cli.end()
        if pid is not None:
            end_pid(pid)
    assert not listening(port)


def test_parley_run_provider_prolific_is_served_by_the_running_server_with_no_second_listener(
    db_url: str, tmp_path: Path
) -> None:
    with server_process(db_url, tmp_path) as server:
        unused = free_port()
        env = cli_env(db_url, tmp_path, unused)
        ran = parley(["run", TASK, "--provider", "prolific", "--run-id", "there", "--detach"], env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        _, page = served_by(ran.stdout, "there")
        assert page == f"{server.base}/task/there" and "started one" not in ran.stdout
        assert f"{server.base}/sandbox/prolific/participant" in ran.stdout and "/sandbox/worker" not in ran.stdout
        assert not listening(unused)  # no second server
        study = published(ran.stdout, "there")
        assert studies(server.base, "there") == {study: "ACTIVE"}

        stopped = parley(["stop", "there"], env)  # from anywhere, as for an MTurk run
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        bounded("the server to stop run there's study", lambda: studies(server.base, "there") == {study: "COMPLETED"})

        again = parley(["prolific", "run", TASK, "--run-id", "there", "--detach"], env)  # the other spelling
        assert again.returncode == 0, again.stdout + again.stderr
        assert served_by(again.stdout, "there")[1] == f"{server.base}/task/there"
        reopened = published(again.stdout, "there")
        assert reopened != study and studies(server.base, "there")[reopened] == "ACTIVE"


def test_with_a_prolific_token_set_parley_run_provider_prolific_refuses_to_run_without_live(
    db_url: str, tmp_path: Path
) -> None:
    """Live mode is never the default: a token means Prolific itself, so the command asks for --live first."""
    env = {"PARLEY_DATABASE_URL": db_url, "PARLEY_DATA_DIR": str(tmp_path), "PARLEY_PROLIFIC_API_TOKEN": "real"}
    refused = CliRunner().invoke(app, ["run", TASK, "--provider", "prolific", "--run-id", "money"], env=env)
    assert refused.exit_code == 1
    assert "spend real money: add --live and --budget" in refused.output
    no_budget = CliRunner().invoke(app, ["run", TASK, "--provider", "prolific", "--live"], env=env)
    assert no_budget.exit_code == 1 and "--live needs --budget" in no_budget.output
    status = parley(["status"], cli_env(db_url, tmp_path, free_port()))
    assert status.returncode == 0 and "money" not in status.stdout  # refused before anything was written
