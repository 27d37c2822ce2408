"""The Prolific ledger shared by a server and CLI commands, and the built-in Prolific's one writer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.prolific_sandbox import build_prolific_sandbox
from server.prolific_sandbox.core import Elsewhere
from server.providers.prolific_ledger import BonusEntry, Ledger


async def test_two_ledgers_on_one_file_serialize_their_changes_and_lose_none(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    server_side, cli_side = Ledger(path, "builtin"), Ledger(path, "builtin")

    async def add(ledger: Ledger, key: str) -> None:
        async with ledger.hold():
            ledger.account.bonuses[key] = BonusEntry(key=key, run_id="r", submission_id="s", worker_id="w",
                                                     amount_cents=1)
            await asyncio.sleep(0.01)  # the other side waits on the lock meanwhile
            ledger.save()

    await asyncio.gather(*(add(server_side if i % 2 else cli_side, f"k{i}") for i in range(10)))
    assert sorted(Ledger(path, "builtin").account.bonuses) == sorted(f"k{i}" for i in range(10))
    assert sorted(server_side.account.bonuses) == sorted(f"k{i}" for i in range(10))  # read afresh outside


def test_the_built_in_prolific_has_one_writer_per_state_file(tmp_path: Path) -> None:
    first, _ = build_prolific_sandbox(state_path=tmp_path / "prolific.json")
    second, _ = build_prolific_sandbox(state_path=tmp_path / "prolific.json")
    assert first.held and not second.held
    first.set_funds(500)
    with pytest.raises(Elsewhere):
        second.set_funds(1)
    first.release()
    assert second.held  # takes over, reading what the first left
    assert second.run(lambda state, now: state.funds) == 500
    second.release()
