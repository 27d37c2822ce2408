"""`parley prolific ...` against a real server recruiting on its built-in Prolific."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

import server.cli_prolific  # noqa: F401  (registers `parley prolific`)
from server.cli import app
from server.providers.prolific import codes_for
from tests.conftest import TEST_RUNS, make_settings
from tests.prolific.helpers import eventually_sync, hand_in, take_place
from tests.support.server import LiveServer, serve

RUNNER = CliRunner()
REASON = "The answers in this conversation do not address the partner's questions at any point of the dialogue."


def parley(live: LiveServer, *args: str) -> Any:
    env = {"PARLEY_DATABASE_URL": live.settings.database_url, "PARLEY_DATA_DIR": str(live.settings.data_dir),
           "PARLEY_PUBLIC_URL": live.base, "PARLEY_PROVIDER": "builtin", "COLUMNS": "200"}
    return RUNNER.invoke(app, list(args), env=env)


def wait_for_study(live: LiveServer) -> str:
    """The server's study manager publishes the run's study in the background: as `parley prolific studies`
    lists it."""
    def listed() -> str | None:
        for line in parley(live, "prolific", "studies").output.splitlines():
            if "chat" in line and "ACTIVE" in line:
                return next(word for word in line.replace("│", " ").split() if len(word) == 24)
        return None

    return eventually_sync("`parley prolific studies` to list the chat run's study as ACTIVE", listed)


def test_review_bonus_block_and_expire_through_the_cli(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, TEST_RUNS).model_copy(
        update={"prolific_publish": ["chat"], "mturk_sync_s": 0.3}
    )
    with serve(settings) as live, httpx.Client(base_url=live.base, timeout=10) as site:
        study = wait_for_study(live)
        first = take_place(site, study, "PID-1")["SESSION_ID"]
        second = take_place(site, study, "PID-2")["SESSION_ID"]
        hand_in(site, "PID-1", codes_for("chat").done)
        hand_in(site, "PID-2", codes_for("chat").done)

        listed = parley(live, "prolific", "submissions", "chat")
        assert listed.exit_code == 0 and first in listed.output and "AWAITING REVIEW" in listed.output

        approved = parley(live, "prolific", "approve", first)
        assert approved.exit_code == 0 and "APPROVED" in approved.output
        short = parley(live, "prolific", "reject", second, "--reason", "bad", "--category", "LOW_EFFORT")
        assert short.exit_code == 1 and "at least 100 characters" in short.output
        rejected = parley(live, "prolific", "reject", second, "--reason", REASON, "--category", "LOW_EFFORT")
        assert rejected.exit_code == 0 and "REJECTED" in rejected.output

        for _ in range(2):  # the same bonus asked for twice is paid once
            paid = parley(live, "prolific", "bonus", first, "0.50", "--reason", "thanks")
            assert paid.exit_code == 0 and "paid" in paid.output, paid.output
        bonuses = live.app.state.prolific_sandbox.run(lambda state, now: state.submissions[first].bonus_payments)
        assert bonuses == [50]

        assert parley(live, "prolific", "block", "PID-3", "--reason", "spam").exit_code == 0
        refused = site.post(f"/sandbox/prolific/participant/studies/{study}/start", data={"pid": "PID-3"})
        assert refused.status_code == 409

        balance = parley(live, "prolific", "balance")
        assert balance.exit_code == 0 and "GBP" in balance.output

        assert parley(live, "prolific", "expire", "chat").exit_code == 0
        assert "COMPLETED" in parley(live, "prolific", "studies").output
