"""`parley run`'s flags: each overrides the task's declaration, is echoed in the plan printed before
publishing, is refused with a clear error before anything is written, and is what the built-in sandbox's
HITs carry (read back with boto3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.run_flags import FlagError, RunFlags, reward, seconds
from server.tasks import load_task
from tests.hits.harness import HitServer, mturk, settings_for
from tests.test_cli import parley, serve
from tests.test_cli_run import bounded

QA = "worlds.qa_data_collection"


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[HitServer]:
    with serve(settings_for(tmp_path, db_url, {}, mturk_publish=[])) as live:
        yield live


def run_hits(client: Any, run_id: str) -> list[dict[str, Any]]:
    """Every HIT of the run on the account, whatever its status."""
    found, token = [], None
    while True:
        page = client.list_hits(MaxResults=100, **({"NextToken": token} if token else {}))
        found += [h for h in page["HITs"] if h.get("RequesterAnnotation") == run_id]
        token = page.get("NextToken")
        if not token or not page["HITs"]:
            return found


def passes_after(server: HitServer, count: int) -> None:
    """Wait until the HIT manager has made `count` more passes (each would top the run up if it could)."""
    start = server.hits.passes
    bounded(f"{count} more HIT manager passes", lambda: server.hits.passes >= start + count)


def test_the_seed_command_publishes_exactly_two_one_assignment_hits_at_five_cents(server: HitServer) -> None:
    ran = parley(server, "run", QA, "-nh", "2", "-na", "1", "-r", "0.05", "--run-id", "seed", "--detach")
    assert ran.exit_code == 0, ran.output
    plan = ran.output[: ran.output.index("is registered")]  # printed before anything was written
    assert "publishes 2 ExternalQuestion HIT(s) of its task page, 1 assignment each" in plan, plan
    assert "reward $0.05 per assignment" in plan and "target 2 conversation(s)" in plan, plan
    client = mturk(server.endpoint)
    bounded("two HITs of run seed", lambda: len(run_hits(client, "seed")) == 2)
    passes_after(server, 5)  # the target (2 conversations, 125% overbooked) would want a third
    hits = run_hits(client, "seed")
    assert len(hits) == 2
    assert {(h["MaxAssignments"], h["Reward"], h["HITStatus"]) for h in hits} == {(1, "0.05", "Assignable")}


def test_every_run_flag_reaches_the_published_hits_and_the_served_task(server: HitServer) -> None:
    ran = parley(server, "run", QA, "--hits", "3", "--reward", "0.12", "--lifetime", "2h", "--assignment-duration",
                 "30m", "--conversations", "7", "--max-conversations", "2", "--per-worker", "4", "--run-id", "all",
                 "--detach")
    assert ran.exit_code == 0, ran.output
    for said in ("publishes 3 ExternalQuestion HIT(s)", "reward $0.12", "HIT lifetime 2h", "30m to submit",
                 "target 7 conversation(s), at most 2 at once, at most 4 per worker"):
        assert said in ran.output, ran.output
    client = mturk(server.endpoint)
    # At most 2 conversations at once, one role: two HITs open; the third waits for a conversation to end.
    hits = bounded("two HITs of run all", lambda: len(found := run_hits(client, "all")) == 2 and found)
    for hit in hits:
        assert hit["Reward"] == "0.12" and hit["MaxAssignments"] == 1 and hit["AssignmentDurationInSeconds"] == 1800
        lifetime = hit["Expiration"].timestamp() - hit["CreationTime"].timestamp()
        assert abs(lifetime - 7200) < 60, lifetime
    caps = server.app.state.runs.get("all").task.caps
    assert (caps.target_conversations, caps.max_conversations, caps.per_worker_total) == (7, 2, 4)


@pytest.mark.parametrize(("flags", "says"), [
    (["-r", "-0.05"], "cannot be negative"),
    (["-r", "0.001"], "smallest reward is $0.01"),
    (["-r", "0.055"], "whole cents"),
    (["-na", "0"], "at least one assignment"),
    (["-na", "2"], "one assignment per HIT"),
    (["-nh", "0"], "--hits 0: give 1 or more"),
    (["--lifetime", "10s"], "30 seconds to 365 days"),
    (["--assignment-duration", "soon"], "give a duration"),
    (["--sandbox"], "docs/deploy.md"),
])
def test_a_bad_flag_is_refused_with_what_to_do_and_writes_nothing(
    server: HitServer, flags: list[str], says: str
) -> None:
    ran = parley(server, "run", QA, *flags, "--run-id", "bad", "--detach")
    assert ran.exit_code == 1 and says in ran.output, ran.output
    assert "bad" not in parley(server, "status").output  # no run, no plan, no HIT
    assert run_hits(mturk(server.endpoint), "bad") == []


def test_provider_sandbox_needs_an_https_public_url_and_says_how_to_get_one(server: HitServer) -> None:
    ran = parley(server, "--provider", "sandbox", "run", QA, "--run-id", "nohttps", "--detach")
    assert ran.exit_code == 1 and "https://" in ran.output and "docs/deploy.md" in ran.output, ran.output


def test_flags_travel_with_the_run_and_leave_the_module_task_untouched() -> None:
    flags = RunFlags(hits=4, reward=reward("0.07"), lifetime_s=seconds("1d", "--lifetime"), per_worker=2)
    task = load_task("tests.hits.tasks:chat2", flags.options())
    assert (task.reward, task.hit_lifetime_s, task.caps.per_worker_total) == (0.07, 86400, 2)
    assert task.caps.target_conversations == 2  # four HITs, two roles
    assert RunFlags.from_options(flags.to_options()) == flags
    assert load_task("tests.hits.tasks:chat2").reward != 0.07
    with pytest.raises(FlagError, match="365 days"):
        seconds("400d", "--lifetime")


def test_running_a_run_again_with_other_flags_is_refused(server: HitServer) -> None:
    first = parley(server, "run", QA, "-nh", "1", "--run-id", "again", "--detach")
    assert first.exit_code == 0, first.output
    other = parley(server, "run", QA, "-nh", "5", "--run-id", "again", "--detach")
    assert other.exit_code == 1 and "other flags" in other.output and "new --run-id" in other.output, other.output
