"""`parley` against a real server with the built-in sandbox: watch, review, pay, expire, clean up, refuse live."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from server.cli import app
from server.settings import Settings
from server.store import Store
from tests.hits.form_flow import ANSWERS, WORKERS, answer_every_item
from tests.hits.harness import ROOT, HitServer, mturk, open_hits, settings_for
from tests.sandbox.helpers import accept_as, external_submit_url, turk_submit_to
from tests.support.client import Crowd
from tests.support.server import free_port
from tests.support.server import serve as serve_live
from tests.test_cli_run import CliProcess, bounded, cli_env, end_pid, listening, started_pid

RUNNER = CliRunner()


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[HitServer]:
    """A server whose settings know its port, so the instance it registers says where it listens (the CLI
    finds the built-in sandbox there)."""
    port = free_port()
    with serve_live(settings.model_copy(update={"port": port}), port) as live:
        yield HitServer(app=live.app, port=live.port, settings=live.settings)


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"chat": "tests.hits.tasks:chat2"})) as live:
        yield live


def parley(server: HitServer, *args: str, input: str | None = None) -> Any:
    env = {"PARLEY_DATABASE_URL": server.settings.database_url, "PARLEY_DATA_DIR": str(server.settings.data_dir),
           "PARLEY_PUBLIC_URL": "", "PARLEY_PORT": "9", "PARLEY_PROVIDER": "builtin", "COLUMNS": "200"}
    return RUNNER.invoke(app, list(args), env=env, input=input)


def until(check: Any, what: str = "the built-in sandbox's HITs to reach the state the test needs") -> Any:
    """Poll a boto3 read (MTurk state has no event to wait on), bounded."""
    return bounded(what, check)


def _work_one_hit(server: HitServer, client: Any, worker_id: str) -> str:
    """A worker accepts an open HIT and submits it straight away (the sandbox's JSON actions and form post)."""
    hit = until(lambda: open_hits(client, "chat"))[0]
    with httpx.Client(base_url=server.base, timeout=10) as browser:
        accepted = accept_as(browser, worker_id, hit["HITId"])
    assignment_id = str(accepted.json()["assignment_id"])
    httpx.post(external_submit_url(accepted.json()["url"]), data={"assignmentId": assignment_id, "ok": "1"})
    return assignment_id


def test_review_approve_bonus_and_balance_through_the_cli(server: HitServer) -> None:
    client = mturk(server.endpoint)
    assignment_id = _work_one_hit(server, client, "ACLIWORKER")
    until(lambda: assignment_id in parley(server, "review", "chat").output)
    before = parley(server, "balance").output
    assert parley(server, "reject", assignment_id, "--reason", " ").exit_code == 1  # a reason is required
    approved = parley(server, "approve", assignment_id, "--feedback", "Thanks")
    assert approved.exit_code == 0, approved.output
    assert client.get_assignment(AssignmentId=assignment_id)["Assignment"]["AssignmentStatus"] == "Approved"
    paid = parley(server, "bonus", assignment_id, "0.50", "--reason", "Nice work")
    assert paid.exit_code == 0 and "ACLIWORKER: paid." in paid.output, paid.output
    again = parley(server, "bonus", assignment_id, "0.50", "--reason", "Nice work")
    assert again.exit_code == 0 and "already paid" in again.output, again.output
    assert len(client.list_bonus_payments(AssignmentId=assignment_id)["BonusPayments"]) == 1
    assert parley(server, "balance").output != before
    status = parley(server, "status")
    assert status.exit_code == 0 and "tests.hits.tasks:chat2" in status.output and "no cap" in status.output
    # Spent: the approved HIT ($0.60) and the bonus ($0.60); reserved: the run's other HITs, open ($0.60 each).
    spent = re.search(r"\$(\d+\.\d\d) \+ \$(\d+\.\d\d) / no cap", status.output)
    assert spent is not None and spent.group(1) == "1.20" and float(spent.group(2)) > 0, status.output


def test_expire_stops_the_run_and_closes_its_open_hits(server: HitServer) -> None:
    client = mturk(server.endpoint)
    until(lambda: len(open_hits(client, "chat")) == 2)
    result = parley(server, "expire", "chat")
    assert result.exit_code == 0 and "Expired" in result.output, result.output
    assert open_hits(client, "chat") == []  # (the server, seeing the run stopped, may have expired some first)


def test_cleanup_finds_and_expires_hits_no_run_wants(server: HitServer) -> None:
    client = mturk(server.endpoint)
    until(lambda: len(open_hits(client, "chat")) == 2)
    hit_type = client.create_hit_type(
        Title="Stray", Description="left behind", Reward="0.10", AssignmentDurationInSeconds=600
    )["HITTypeId"]
    question = client.get_hit(HITId=open_hits(client, "chat")[0]["HITId"])["HIT"]["Question"]
    stray = client.create_hit_with_hit_type(
        HITTypeId=hit_type, MaxAssignments=1, LifetimeInSeconds=3600, Question=question, RequesterAnnotation="gone"
    )["HIT"]["HITId"]
    result = parley(server, "cleanup", "--yes")
    assert result.exit_code == 0 and stray in result.output, result.output
    assert open_hits(client, "gone") == []
    assert len(open_hits(client, "chat")) == 2  # the live run's HITs are not orphans


def test_live_run_is_refused_without_budget_or_https_or_confirmation(server: HitServer) -> None:
    no_budget = parley(server, "run", "tests.hits.tasks:chat2", "--live")
    assert no_budget.exit_code == 1 and "budget" in no_budget.output
    http = parley(server, "run", "tests.hits.tasks:chat2", "--live", "--budget", "5")
    assert http.exit_code == 1 and "https" in http.output
    env = {"PARLEY_DATABASE_URL": server.settings.database_url, "PARLEY_PUBLIC_URL": "https://parley.example",
           "PARLEY_ADMIN_TOKEN": "x" * 20}
    declined = RUNNER.invoke(app, ["run", "tests.hits.tasks:chat2", "--live", "--budget", "5", "--run-id", "L1"],
                             env=env, input="n\n")
    assert declined.exit_code != 0 and "$5.00" in declined.output
    assert "L1" not in parley(server, "status").output  # nothing was written


def test_run_refuses_a_question_kind_or_assignments_the_task_cannot_take_and_writes_nothing(
    server: HitServer,
) -> None:
    not_a_form = parley(server, "run", "tests.hits.tasks:chat2", "--question", "html", "--run-id", "R1")
    assert not_a_form.exit_code == 1 and "leave out --question html" in not_a_form.output
    too_many = parley(server, "run", "tests.hits.tasks:form3", "--assignments", "10", "--run-id", "R2")
    assert too_many.exit_code == 1 and "1..9" in too_many.output and "40%" in too_many.output
    external = parley(server, "run", "tests.hits.tasks:chat2", "--assignments", "3", "--run-id", "R3")
    assert external.exit_code == 1 and "--assignments 3" in external.output and "--hits" in external.output
    status = parley(server, "status").output
    assert "R1" not in status and "R2" not in status and "R3" not in status  # nothing was written


@pytest.fixture
def qa_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"qa": "tests.support.tasks:qa"}, mturk_publish=[])) as live:
        yield live


async def _finish_qa(base: str) -> None:
    crowd = Crowd(base)
    try:
        w = await crowd.start("qa", "AEXPORTER1")
        await w.wait_turn(1)
        await w.say("Where do tide pools form?")
        await w.wait_turn(2)
        await w.say("On rocky shores.")
        await w.wait_state("done")
    finally:
        await crowd.close()


def test_export_writes_each_format_with_hashed_worker_ids(qa_server: HitServer, tmp_path: Path) -> None:
    asyncio.run(_finish_qa(qa_server.base))
    for fmt in ("jsonl", "parlai", "csv"):
        out = tmp_path / f"qa.{fmt}"
        result = parley(qa_server, "export", "qa", "--format", fmt, "--out", str(out))
        assert result.exit_code == 0, result.output
        text = out.read_text()
        assert "Where do tide pools form?" in text and "On rocky shores." in text
        assert "AEXPORTER1" not in text  # hashed by default
    record = json.loads((tmp_path / "qa.jsonl").read_text().splitlines()[0])
    assert isinstance(record, dict)
    with (tmp_path / "qa.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 2
    raw = parley(qa_server, "export", "qa", "--raw-worker-ids")
    assert raw.exit_code == 0 and "AEXPORTER1" in raw.output
    bad = parley(qa_server, "export", "qa", "--format", "xml")
    assert bad.exit_code != 0 and "--format" in bad.output


@pytest.fixture
def form_server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {"form": "tests.hits.tasks:form3"})) as live:
        yield live


def test_a_form_runs_agreement_export_and_review_through_the_cli(form_server: HitServer, tmp_path: Path) -> None:
    async def answer() -> None:
        store = Store(form_server.settings.db_url)
        try:
            await answer_every_item(form_server.base, mturk(form_server.endpoint), store, "form")
        finally:
            await store.close()

    asyncio.run(answer())
    result = parley(form_server, "agreement", "form", "--json")
    assert result.exit_code == 0, result.output
    [figures] = json.loads(result.output)
    assert figures["field"] == "emotion" and figures["percent_agreement"] == pytest.approx(4 / 9)
    assert figures["fleiss_kappa"] == pytest.approx(11 / 56)
    table = parley(form_server, "agreement", "form")
    assert "percent agreement 0.444" in table.output and "Fleiss' kappa 0.196" in table.output
    assert "9 answer(s) in (9 awaiting review), 0 still pending" in table.output, table.output

    out = tmp_path / "form.csv"
    assert parley(form_server, "export", "form", "--format", "csv", "--out", str(out)).exit_code == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["item_id"], r["answer.emotion"]) for r in rows) == sorted(
        (item, label) for item, labels in ANSWERS.items() for label in labels
    )
    assert not {r["worker_id"] for r in rows} & set(WORKERS)  # hashed by default

    assert parley(form_server, "review", "form").output.count("AFORMWORKER") == 9
    approved = parley(form_server, "approve", "--run", "form")
    assert approved.exit_code == 0 and "Approved 9 assignment(s)" in approved.output, approved.output
    assert parley(form_server, "review", "form").output.count("AFORMWORKER") == 0
    unknown = parley(form_server, "agreement", "nope")
    assert unknown.exit_code == 1 and "no run nope" in unknown.output


# `parley run worlds.<task>` for every task of the library, through the installed entry point. Add a task
# module here when it lands; static_form's default (HTMLQuestion forms) is checked apart below.
LIBRARY_TASKS = [
    "worlds.qa_data_collection",
    "worlds.chat_demo",
    "worlds.model_evaluator",
    "worlds.multi_agent_dialog",
    "worlds.model_chat",
    "worlds.pairwise_eval",
    "worlds.role_survey",  # custom UI per role
    "worlds.picture_pick",  # pictures from its assets
    "worlds.static_form --question external",  # the form served by Parley's task page
]


@contextlib.contextmanager
def parley_run(command: str, run_id: str, db_url: str, data_dir: Path) -> Iterator[str]:
    """`parley run TASK [OPTIONS] --on-exit leave` as a process of its own, on the built-in sandbox, with no
    server running: it starts one. Yields that server's base URL; afterwards Ctrl-C leaves the run to that
    server, which then ends on SIGTERM. (Stopping, which expires every HIT, is tested in test_cli_run.py.)"""
    task, *options = command.split()
    port = free_port()
    cli = CliProcess(["run", task, *options, "--run-id", run_id, "--on-exit", "leave"],
                     cli_env(db_url, data_dir, port), data_dir / f"parley-run-{run_id}.out")
    pid = None
    try:
        pid = started_pid(cli.wait_for(f"Run {run_id} is served by"))
        assert pid is not None, cli.output
        yield f"http://127.0.0.1:{port}"
        assert cli.interrupt() == 0, cli.output
        assert f"keeps serving in the background: pid {pid}" in cli.output and listening(port), cli.output
    finally:
        cli.end()
        pid = pid or started_pid(cli.output)
        if pid is not None:
            end_pid(pid)
    assert not listening(port)


@pytest.mark.parametrize("task", LIBRARY_TASKS)
def test_parley_run_publishes_each_task_and_a_worker_can_open_and_join_it(
    task: str, db_url: str, tmp_path: Path
) -> None:
    run_id = "cli-" + task.split()[0].rsplit(".", 1)[-1].replace("_", "-")
    with parley_run(task, run_id, db_url, tmp_path) as base:
        client = mturk(f"{base}/sandbox/mturk")
        hit = bounded(f"an open HIT of run {run_id} on the built-in sandbox", lambda: open_hits(client, run_id))[0]
        assert hit["MaxAssignments"] == 1 and f"<ExternalURL>{base}/task/{run_id}</ExternalURL>" in hit["Question"]
        with httpx.Client(base_url=base, timeout=10) as browser:
            accepted = accept_as(browser, "ACLIRUN1", hit["HITId"])
        assert accepted.status_code == 200, accepted.text
        page = httpx.get(accepted.json()["url"])
        assert page.status_code == 200 and "<html" in page.text.lower()
        joined = httpx.post(f"{base}/task/{run_id}/join", json={
            "assignment_id": accepted.json()["assignment_id"], "hit_id": hit["HITId"], "worker_id": "ACLIRUN1",
            "turk_submit_to": turk_submit_to(accepted.json()["url"]),
        })
        assert joined.status_code == 200, joined.text
        assert joined.json()["token"] and joined.json()["agent_id"]


def test_parley_run_publishes_the_static_form_as_one_html_hit_per_item(db_url: str, tmp_path: Path) -> None:
    with parley_run("worlds.static_form", "cli-form", db_url, tmp_path) as base:
        client = mturk(f"{base}/sandbox/mturk")
        with (ROOT / "worlds" / "data" / "tweets.csv").open(encoding="utf-8", newline="") as fh:
            items = list(csv.DictReader(fh))
        hits = bounded(f"{len(items)} open HITs of run cli-form on the built-in sandbox",
                       lambda: (found := open_hits(client, "cli-form")) and len(found) == len(items) and found)
        assert {h["MaxAssignments"] for h in hits} == {3}
        assert all("<HTMLQuestion" in h["Question"] for h in hits)
        page = httpx.get(f"{base}/sandbox/worker/html/{hits[0]['HITId']}")
        assert page.status_code == 200 and 'name="item_id"' in page.text and 'name="emotion"' in page.text
