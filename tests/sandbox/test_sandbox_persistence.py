"""The state survives a new sandbox on the same file, and a SIGKILLed server process."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
from typing import Any

from server.sandbox import build_sandbox
from tests.sandbox.conftest import FakeClock, SandboxServer, listening_socket, mturk_client
from tests.sandbox.helpers import balance, create_hit

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_everything_is_reloaded_by_a_new_sandbox_on_the_same_file(
    server: SandboxServer, mturk: Any, clock: FakeClock
) -> None:
    qualification = mturk.create_qualification_type(
        Name="onboarded", Description="Passed onboarding", QualificationTypeStatus="Active"
    )["QualificationType"]["QualificationTypeId"]
    hit = create_hit(mturk, server.external_question(), MaxAssignments=2, RequesterAnnotation="run-1")
    assignment = server.sandbox.accept("AWORKER1", hit["HITId"])
    server.sandbox.submit(assignment.assignment_id, {"answer": "kept"})
    mturk.approve_assignment(AssignmentId=assignment.assignment_id)
    mturk.send_bonus(
        WorkerId="AWORKER1",
        AssignmentId=assignment.assignment_id,
        BonusAmount="1.00",
        Reason="x",
        UniqueRequestToken="bonus-1",
    )
    mturk.associate_qualification_with_worker(QualificationTypeId=qualification, WorkerId="AWORKER1")
    mturk.create_worker_block(WorkerId="ABLOCKED", Reason="spam")
    before = balance(mturk)

    reborn = build_sandbox(state_path=server.state_path, clock=clock)
    assert not reborn.held  # one writer per state file: the first sandbox still serves it
    expected = server.sandbox.state
    server.sandbox.release()

    assert reborn.held
    assert reborn.state == expected
    assert reborn.call("GetAccountBalance")["AvailableBalance"] == before
    assert reborn.call("GetHIT", {"HITId": hit["HITId"]})["HIT"]["RequesterAnnotation"] == "run-1"
    assert reborn.call("ListWorkerBlocks")["WorkerBlocks"] == [{"WorkerId": "ABLOCKED", "Reason": "spam"}]
    assert "kept" in reborn.call("GetAssignment", {"AssignmentId": assignment.assignment_id})["Assignment"]["Answer"]
    assert reborn.call("ListBonusPayments", {"HITId": hit["HITId"]})["NumResults"] == 1
    assert reborn.call("GetQualificationScore", {"QualificationTypeId": qualification, "WorkerId": "AWORKER1"})


def test_state_file_is_replaced_whole_without_leftover_temporaries(server: SandboxServer, mturk: Any) -> None:
    for _ in range(3):
        create_hit(mturk, server.external_question())

    # the state file and its one-writer lock (persistence.StateLock), nothing else
    assert sorted(path.name for path in server.state_path.parent.iterdir()) == ["sandbox.json", "sandbox.json.lock"]


def test_a_sigkilled_server_comes_back_with_its_hits_and_balance(tmp_path: pathlib.Path) -> None:
    state_path = tmp_path / "sandbox.json"

    def start() -> tuple[subprocess.Popen[bytes], Any]:
        sock = listening_socket()
        host, port = sock.getsockname()
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.sandbox.sandbox_app", str(state_path), str(sock.fileno())],
            cwd=REPO,
            pass_fds=[sock.fileno()],
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        )
        sock.close()  # the child holds its own copy; requests queue in the backlog until it serves them
        return process, mturk_client(f"http://{host}:{port}/sandbox/mturk")

    first, mturk = start()
    try:
        question = (
            '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
            '2006-07-14/ExternalQuestion.xsd"><ExternalURL>https://example.org/task</ExternalURL>'
            "<FrameHeight>0</FrameHeight></ExternalQuestion>"
        )
        hit = create_hit(mturk, question, Reward="2.00", MaxAssignments=2, UniqueRequestToken="slot-1")
        held = balance(mturk)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

    second, mturk = start()
    try:
        hits = mturk.list_hits()["HITs"]
        again = balance(mturk)
        try:
            create_hit(mturk, question, UniqueRequestToken="slot-1")
            repeat_refused = False
        except mturk.exceptions.RequestError:
            repeat_refused = True
    finally:
        second.terminate()
        second.wait(timeout=10)

    assert first.returncode == -signal.SIGKILL
    assert [h["HITId"] for h in hits] == [hit["HITId"]]
    assert held == again == "9995.20"
    assert repeat_refused
