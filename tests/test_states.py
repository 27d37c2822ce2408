import itertools

import pytest

from server.states import (
    LIVE_STATES,
    SUBMITTABLE_STATES,
    TRANSITIONS,
    AgentState,
    BonusStatus,
    CompensationStatus,
    HitStatus,
    IllegalTransition,
    ProlificBonusState,
    RunStatus,
    describe_states,
    transition,
)
from server.store import Store
from server.store.compensations import CompensationRecord, CompensationStore
from server.store.hits import BonusRecord, HitPlan, HitStore
from server.store.prolific import BonusEntry, ProlificRecords, StudyPlan

S = AgentState


def test_main_path_is_legal_step_by_step() -> None:
    path = [S.JOINED, S.ONBOARDING, S.WAITING, S.IN_TASK, S.DONE, S.SUBMITTED, S.APPROVED]
    for current, target in itertools.pairwise(path):
        assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [
    (S.JOINED, S.IN_TASK),
    (S.WAITING, S.DONE),
    (S.DONE, S.IN_TASK),
    (S.APPROVED, S.REJECTED),
    (S.ONBOARDING_FAILED, S.WAITING),
    (S.SUBMITTED, S.DONE),
])
def test_illegal_moves_are_refused_with_what_was_expected(current: AgentState, target: AgentState) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(current, target)
    assert f"from {current!r}" in str(info.value)
    assert f"got {target!r}" in str(info.value)


def test_every_live_state_has_a_way_out_for_a_worker_who_leaves() -> None:
    for state in LIVE_STATES:
        assert S.DISCONNECTED in TRANSITIONS[state]
        assert S.RETURNED in TRANSITIONS[state]


def test_every_submittable_state_can_reach_submitted() -> None:
    for state in SUBMITTABLE_STATES:
        assert S.SUBMITTED in TRANSITIONS[state]


def test_the_page_gets_every_state_with_its_text_and_flags() -> None:
    described = describe_states()
    assert set(described) == {s.value for s in S}
    assert described["partner_left"]["can_submit"] is True
    assert described["waiting"]["live"] is True
    assert described["onboarding_failed"]["can_submit"] is False
    assert all(isinstance(d["text"], str) and d["text"] for d in described.values())


async def test_a_run_is_stored_active_and_every_run_status_reads_back_as_itself(store: Store) -> None:
    await store.ensure_run("r1", task_module="worlds.echo", options={})
    row = await store.get_run("r1")
    assert row is not None and RunStatus(row.status) is RunStatus.ACTIVE
    for status in RunStatus:
        await store.set_run_status("r1", status=status)
        row = await store.get_run("r1")
        assert row is not None and RunStatus(row.status) is status
        assert [r.id for r in await store.runs(status=status)] == ["r1"]
        for other in set(RunStatus) - {status}:
            assert await store.runs(status=other) == []


async def test_a_hit_is_reserved_creating_and_every_hit_status_reads_back_as_itself(store: Store) -> None:
    hit_store = HitStore(store)
    await hit_store.save_plan(HitPlan(run_id="r1", account="test", reward_cents=100))
    reserved = await hit_store.reserve_hit("r1", 120, lambda slot: f"token-{slot}")
    [record] = await hit_store.hits("r1")
    assert HitStatus(record.status) is HitStatus.CREATING and record.token == reserved.token
    for status in HitStatus:
        await hit_store.set_hit(record.token, status=status)
        [found] = await hit_store.hits("r1", statuses=[status])
        assert HitStatus(found.status) is status and found.token == record.token
        assert await hit_store.hits("r1", statuses=[s for s in HitStatus if s != status]) == []


async def test_a_bonus_is_recorded_sending_and_every_bonus_status_reads_back_as_itself(store: Store) -> None:
    hit_store = HitStore(store)
    await hit_store.save_plan(HitPlan(run_id="r1", account="test", reward_cents=100))
    await hit_store.reserve_bonus(BonusRecord(
        token="b1", run_id="r1", assignment_id="A1", worker_id="W1", amount_cents=50, fee_cents=10, reason="thanks",
    ))
    [recorded] = await hit_store.bonuses("r1")
    assert BonusStatus(recorded.status) is BonusStatus.SENDING
    for status in BonusStatus:
        await hit_store.set_bonus_status("b1", status=status)
        found = await hit_store.bonus("b1")
        assert found is not None and BonusStatus(found.status) is status
    # What is not paid yet is reserved; a paid bonus is spent.
    assert (await hit_store.money("r1")).reserved_cents == 0 and await hit_store.spend("r1") == 60


async def test_a_prolific_bonus_is_created_and_every_state_reads_back_as_itself(store: Store) -> None:
    records = ProlificRecords(store, "builtin")
    await records.save_plan(StudyPlan(run_id="r1", task_module="worlds.chat_demo", reward_cents=150))
    entry = BonusEntry(account="", key="k1", run_id="r1", submission_id="s1", worker_id="w1", amount_cents=100)
    await records.admit_bonus(entry, budget_cents=0, studies_cents=0, refuse=RuntimeError)
    found = await records.bonus("k1")
    assert found is not None and ProlificBonusState(found.state) is ProlificBonusState.CREATED
    for was, to in itertools.pairwise([*ProlificBonusState, ProlificBonusState.CREATED]):
        assert await records.move_bonus("k1", was=was, to=to)
        found = await records.bonus("k1")
        assert found is not None and ProlificBonusState(found.state) is to


async def test_a_compensation_is_reserved_creating_and_every_status_reads_back_as_itself(store: Store) -> None:
    hit_store = HitStore(store)
    await hit_store.save_plan(HitPlan(run_id="r1", account="test", reward_cents=100))
    records = CompensationStore(hit_store)
    await records.reserve(CompensationRecord(
        token="c1", run_id="r1", worker_id="W1", amount_cents=100, fee_cents=20, reason="a bug",
    ))
    [reserved] = await records.listed("r1")
    assert CompensationStatus(reserved.status) is CompensationStatus.CREATING
    for status in CompensationStatus:
        await records.update("c1", status=status)
        [found] = await records.listed("r1", statuses=[status])
        assert CompensationStatus(found.status) is status and found.token == "c1"
        assert await records.listed("r1", statuses=[s for s in CompensationStatus if s != status]) == []
        # An expired or failed compensation costs nothing; the others count in the run's spend.
        free = status in (CompensationStatus.EXPIRED, CompensationStatus.FAILED)
        assert await hit_store.spend("r1") == (0 if free else 120)
