"""The dashboard and /metrics count HITs in one vocabulary, Parley's: `hit_count` (server/states.py) maps a
HIT record's status, and its assignment's MTurk status, onto it."""

from __future__ import annotations

from typing import Any

from server.admin.metrics import collect
from server.admin.views import run_snapshot
from server.hits.plan import hit_token
from server.states import AssignmentStatus, HitCount, HitStatus, hit_count
from server.store import Store
from server.store.hits import HTML, HitPlan, HitStore

H = HitStatus
A = AssignmentStatus
# (HIT status, its assignment's MTurk status, extra record fields) for each HIT of the run.
RECORDS: list[tuple[HitStatus, str, dict[str, Any]]] = [
    (H.CREATING, "", {}), (H.OPEN, "", {}), (H.OPEN, "", {}), (H.TAKEN, "", {}), (H.CLOSED, "", {}),
    (H.SUBMITTED, A.SUBMITTED, {}), (H.REVIEWED, A.APPROVED, {}), (H.REVIEWED, A.APPROVED, {}),
    (H.REVIEWED, A.REJECTED, {}), (H.REVIEWED, "", {"question": HTML}),  # a form HIT: several assignments
    (H.EXPIRED, "", {}), (H.FAILED, "", {}),
]


class NoRunServed:
    """This process serves no run: only the database's counts."""

    def get(self, run_id: str) -> None:
        return None

    def __iter__(self) -> Any:
        return iter(())


async def _run_with_every_kind_of_hit(store: Store) -> None:
    await store.ensure_run("r1", task_module="tests.support.tasks:qa", options={})
    hits = HitStore(store)
    await hits.save_plan(HitPlan(run_id="r1", account="test", reward_cents=100))
    for status, assignment_status, fields in RECORDS:
        record = await hits.reserve_hit("r1", 120, lambda slot: hit_token("r1", slot), **fields)
        await hits.set_hit(record.token, status=status, assignment_status=assignment_status)


def test_a_hit_counts_as_its_status_and_a_reviewed_one_as_its_assignments_outcome() -> None:
    for status in set(HitStatus) - {H.REVIEWED}:
        assert hit_count(status) is HitCount(status.value)
        assert hit_count(status, A.SUBMITTED) is HitCount(status.value)  # the assignment refines only reviewed
    assert hit_count(H.REVIEWED, A.APPROVED) is HitCount.APPROVED
    assert hit_count(H.REVIEWED, A.REJECTED) is HitCount.REJECTED
    assert hit_count(H.REVIEWED) is HitCount.REVIEWED
    assert all(count.value == count.value.lower() for count in HitCount)  # Parley's words, never MTurk's


async def test_the_dashboard_and_metrics_count_hits_in_parleys_words(store: Store) -> None:
    await _run_with_every_kind_of_hit(store)
    snapshot = await run_snapshot(store=store, runs=NoRunServed(), run_id="r1")  # type: ignore[arg-type]
    assert snapshot is not None
    assert {k: v for k, v in snapshot["hits"].items() if k not in ("published", "by_status")} == {
        "open": 3, "taken": 1, "submitted": 1, "approved": 2, "rejected": 1,
    }
    assert snapshot["hits"]["by_status"] == {
        "creating": 1, "open": 2, "taken": 1, "closed": 1, "submitted": 1, "approved": 2, "rejected": 1,
        "reviewed": 1, "expired": 1, "failed": 1,
    }
    assert set(snapshot["hits"]["by_status"]) <= {count.value for count in HitCount}
    [hits] = [f for f in await collect(store, NoRunServed()) if f.name == "parley_hits"]  # type: ignore[arg-type]
    assert {s.labels["status"]: s.value for s in hits.samples} == snapshot["hits"]["by_status"]
