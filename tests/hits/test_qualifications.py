"""Qualifications declared on the task and given to `parley run`: pushed to MTurk as the HIT type's
QualificationRequirements (read back with boto3), and enforced by the built-in sandbox: a worker who does
not qualify does not see the HIT on the worker site and is refused before accepting it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.hits import plan as rules
from server.hits.quals import allow_list_name, block_list_name
from server.sandbox import Sandbox
from tests.hits.harness import HitServer, TurkWorker, mturk, settings_for
from tests.support.client import JoinRefused
from tests.test_cli import parley, serve
from tests.test_cli_run import bounded
from tests.test_run_flags import run_hits

QA = "worlds.qa_data_collection"


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {}, mturk_publish=[])) as live:
        yield live


def requirements_of(client: Any, run_id: str) -> dict[str, dict[str, Any]]:
    hit = bounded(f"a HIT of run {run_id}", lambda: run_hits(client, run_id))[0]
    reqs = client.get_hit(HITId=hit["HITId"])["HIT"]["QualificationRequirements"]
    return {r["QualificationTypeId"]: r for r in reqs}


BROWSERS: dict[tuple[int, str], TurkWorker] = {}  # the worker site binds a worker id to the browser that picked it


def refusal(server: HitServer, run_id: str, worker_id: str, hit_id: str) -> str | None:
    """Why the worker site refuses this worker the HIT (None: they accepted it), and that it hid it."""
    async def go() -> str | None:
        worker = BROWSERS.setdefault((server.port, worker_id), TurkWorker(server.base, run_id, worker_id))
        worker.run_id = run_id
        visible = await worker.visible_hits()
        try:
            await worker.accept(hit_id)
        except JoinRefused as refused:
            assert hit_id not in visible  # hidden (DiscoverPreviewAndAccept), not only refused
            return str(refused.code)
        assert hit_id in visible
        return None
    return asyncio.run(go())


def qualify(sandbox: Sandbox, worker_id: str, *, country: str, subdivision: str | None) -> None:
    sandbox.set_worker_locale(worker_id, country, subdivision)
    sandbox.set_system_qualification(worker_id, rules.NUMBER_APPROVED, 250)
    sandbox.set_system_qualification(worker_id, rules.PERCENT_APPROVED, 99)
    sandbox.set_system_qualification(worker_id, rules.MASTERS_SANDBOX, 1)


def test_every_qualification_flag_is_pushed_and_enforced_before_accepting(server: HitServer, tmp_path: Path) -> None:
    client = mturk(server.endpoint)
    custom_type = client.create_qualification_type(
        Name="Parley test: fluent", Description="passed our language test", QualificationTypeStatus="Active",
    )["QualificationType"]["QualificationTypeId"]
    sandbox: Sandbox = server.app.state.sandbox
    (tmp_path / "allow.txt").write_text("# our panel\nAGOOD1\nANOLOCALE1, ALOWRATE1\nANOCUSTOM1\n")
    (tmp_path / "block.txt").write_text("ABLOCKED1\n")
    custom = {"QualificationTypeId": custom_type, "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [80],
              "ActionsGuarded": "DiscoverPreviewAndAccept"}
    ran = parley(server, "run", QA, "-nh", "1", "--locale", "US-CA,GB", "--min-approval-rate", "98",
                 "--min-approved-hits", "100", "--masters", "--allow-list", str(tmp_path / "allow.txt"),
                 "--block-list", str(tmp_path / "block.txt"), "--qualification", json.dumps(custom),
                 "--run-id", "quals", "--detach")
    assert ran.exit_code == 0, ran.output
    said = ("qualifications: locale in US-CA, GB; approval rate >= 98%; >= 100 approved HITs; Masters; only the 4 "
            f"worker(s) of the allow list; not the 1 worker(s) of the block list; {custom_type} GreaterThanOrEqualTo "
            "[80]")
    assert said in ran.output, ran.output

    reqs = requirements_of(client, "quals")
    assert reqs[rules.LOCALE]["LocaleValues"] == [{"Country": "US", "Subdivision": "CA"}, {"Country": "GB"}]
    assert reqs[rules.PERCENT_APPROVED]["IntegerValues"] == [98]
    assert reqs[rules.NUMBER_APPROVED]["IntegerValues"] == [100]
    assert reqs[rules.MASTERS_SANDBOX]["Comparator"] == "Exists"
    assert reqs[custom_type]["IntegerValues"] == [80]
    types = {t["Name"]: t["QualificationTypeId"]
             for t in client.list_qualification_types(MustBeRequestable=False, MustBeOwnedByCaller=True)[
                 "QualificationTypes"]}
    assert reqs[types[allow_list_name("quals")]]["Comparator"] == "Exists"
    assert reqs[types[block_list_name("quals")]]["Comparator"] == "DoesNotExist"
    allowed = client.list_workers_with_qualification_type(QualificationTypeId=types[allow_list_name("quals")])
    assert {q["WorkerId"] for q in allowed["Qualifications"]} == {"AGOOD1", "ANOLOCALE1", "ALOWRATE1", "ANOCUSTOM1"}

    for worker in ("AGOOD1", "ANOLOCALE1", "ALOWRATE1", "ANOCUSTOM1", "ASTRANGER1"):
        qualify(sandbox, worker, country="US", subdivision="CA")
        if worker != "ANOCUSTOM1":
            client.associate_qualification_with_worker(QualificationTypeId=custom_type, WorkerId=worker,
                                                       IntegerValue=90, SendNotification=False)
    sandbox.set_worker_locale("ANOLOCALE1", "US", "NY")
    sandbox.set_system_qualification("ALOWRATE1", rules.PERCENT_APPROVED, 90)
    hit_id = run_hits(client, "quals")[0]["HITId"]
    for worker in ("ANOLOCALE1", "ALOWRATE1", "ANOCUSTOM1", "ASTRANGER1"):
        assert refusal(server, "quals", worker, hit_id) == "not_qualified", worker
    assert refusal(server, "quals", "AGOOD1", hit_id) is None  # the one who qualifies accepts it


def test_qualifications_declared_on_the_task_are_pushed_and_a_flag_overrides_them(
    server: HitServer, tmp_path: Path
) -> None:
    client = mturk(server.endpoint)
    declared = parley(server, "run", "tests.hits.tasks:chat2_in_france", "--run-id", "fr", "--detach")
    assert declared.exit_code == 0 and "locale in FR, CA-QC; >= 1 approved HITs" in declared.output, declared.output
    reqs = requirements_of(client, "fr")
    assert reqs[rules.LOCALE]["LocaleValues"] == [{"Country": "FR"}, {"Country": "CA", "Subdivision": "QC"}]
    assert reqs[rules.NUMBER_APPROVED]["IntegerValues"] == [1]
    hit_id = run_hits(client, "fr")[0]["HITId"]
    sandbox: Sandbox = server.app.state.sandbox
    sandbox.set_system_qualification("AUSWORKER1", rules.NUMBER_APPROVED, 5)
    assert refusal(server, "fr", "AUSWORKER1", hit_id) == "not_qualified"  # US is not FR

    (tmp_path / "block.txt").write_text("AUSBLOCKED1\n")
    flagged = parley(server, "run", "tests.hits.tasks:chat2_in_france", "--locale", "US", "--block-list",
                     str(tmp_path / "block.txt"), "--run-id", "us", "--detach")
    assert flagged.exit_code == 0, flagged.output
    assert requirements_of(client, "us")[rules.LOCALE]["LocaleValues"] == [{"Country": "US"}]
    sandbox.set_system_qualification("AUSBLOCKED1", rules.NUMBER_APPROVED, 5)
    assert refusal(server, "us", "AUSBLOCKED1", run_hits(client, "us")[0]["HITId"]) == "not_qualified"
    assert refusal(server, "us", "AUSWORKER1", run_hits(client, "us")[0]["HITId"]) is None


def test_an_unreadable_allow_list_or_a_malformed_requirement_is_refused_with_nothing_written(
    server: HitServer, tmp_path: Path
) -> None:
    (tmp_path / "bad.txt").write_text("AGOOD1\nnot a worker!\n")
    bad_file = parley(server, "run", QA, "--allow-list", str(tmp_path / "bad.txt"), "--run-id", "b1", "--detach")
    assert bad_file.exit_code == 1 and "bad.txt:2" in bad_file.output, bad_file.output
    bad_req = parley(server, "run", QA, "--qualification", '{"QualificationTypeId": "X", "Comparator": "About"}',
                     "--run-id", "b2", "--detach")
    assert bad_req.exit_code == 1 and "Comparator must be one of" in bad_req.output, bad_req.output
    status = parley(server, "status").output
    assert "b1" not in status and "b2" not in status
