"""Parley's Prolific records, shared by every instance and the CLI through the database (both databases), and
the built-in Prolific's one writer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.prolific_sandbox import build_prolific_sandbox
from server.prolific_sandbox.core import Elsewhere
from server.providers.base import BudgetExceeded
from server.states import ProlificBonusState
from server.store import Store
from server.store.prolific import BonusEntry, ProlificRecords, StudyPlan


def bonus(key: str, cents: int = 100) -> BonusEntry:
    return BonusEntry(account="", key=key, run_id="r", submission_id="s", worker_id="w", amount_cents=cents,
                      fee_cents=43, vat_cents=9)


async def test_two_processes_recording_bonuses_at_once_lose_none_and_keep_each_key_once(
    store: Store, db_url: str
) -> None:
    other = Store(db_url)  # a second process's store (a CLI command next to the server)
    await other.open()
    try:
        server_side, cli_side = ProlificRecords(store, "builtin"), ProlificRecords(other, "builtin")
        await server_side.save_plan(StudyPlan(run_id="r", task_module="worlds.chat_demo", reward_cents=150))

        async def add(records: ProlificRecords, key: str) -> BonusEntry:
            return await records.admit_bonus(bonus(key), budget_cents=0, studies_cents=0, refuse=BudgetExceeded)

        made = await asyncio.gather(*(add(server_side if i % 2 else cli_side, f"k{i % 5}") for i in range(10)))
        assert sorted({entry.key for entry in made}) == [f"k{i}" for i in range(5)]
        assert await cli_side.bonuses_cents("r") == 5 * 152  # each key once: 100 + 43 fee + 9 VAT
        moved = [await r.move_bonus("k0", was=ProlificBonusState.CREATED, to=ProlificBonusState.PAYING)
                 for r in (server_side, cli_side)]
        assert moved == [True, False]  # one caller pays
        assert await ProlificRecords(store, "another-account").bonus("k0") is None  # accounts never mix
    finally:
        await other.close()


async def test_concurrent_bonuses_cannot_both_pass_the_budget(store: Store, db_url: str) -> None:
    other = Store(db_url)
    await other.open()
    try:
        first, second = ProlificRecords(store, "builtin"), ProlificRecords(other, "builtin")
        await first.save_plan(StudyPlan(run_id="r", task_module="worlds.chat_demo", reward_cents=150))

        async def add(records: ProlificRecords, key: str) -> str:
            try:
                await records.admit_bonus(bonus(key), budget_cents=1000, studies_cents=700,
                                          refuse=lambda spent: BudgetExceeded(f"spent {spent}"))
                return "admitted"
            except BudgetExceeded:
                return "refused"

        outcomes = await asyncio.gather(add(first, "a"), add(second, "b"))
        assert sorted(outcomes) == ["admitted", "refused"]  # 700 + 152 fits; 700 + 2 x 152 does not
    finally:
        await other.close()


async def test_a_plan_planned_again_publishes_again_and_keeps_its_settings(store: Store) -> None:
    records = ProlificRecords(store, "builtin")
    await records.save_plan(StudyPlan(run_id="r", task_module="worlds.chat_demo", reward_cents=150, budget_cents=900))
    assert await records.set_publishing("r", publishing=False)
    assert not (await records.plans())[0].publishing
    with pytest.raises(ValueError, match="another Prolific account"):
        await ProlificRecords(store, "https://api.prolific.com/api/v1").save_plan(
            StudyPlan(run_id="r", task_module="worlds.chat_demo", reward_cents=150))
    assert not await ProlificRecords(store, "elsewhere").set_publishing("r", publishing=True)


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
