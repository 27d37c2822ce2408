"""Gold checks with consequences: what a task's `GoldPolicy` says failing `World.gold(...)` does.

Each HIT manager pass reads the gold checks kept with the results of the run's conversations that ended
since the last pass (onboarding ones too), keeps each worker's tally for the run, and then, as the policy
says: pushes the worker's score (percent passed) to MTurk as the policy's qualification; soft-blocks a
worker whose score fell below `soft_block_below`; records a `flag` review action on a worker's work in a
conversation with a failed check, which the dashboard and `parley review` show. Every consequence is
idempotent (a flag's id is derived from the agent; a block is applied once; a score pushed again is the
same value), so after a restart the whole run is read again without doubling anything.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from server.hits.quals import Qualifications
from server.hits.review import Review
from server.states import ConversationState
from server.store import Store
from server.store.review import ReviewAction, ReviewStore
from worlds.base import GOLD_KEY, GoldPolicy, Task

log = logging.getLogger(__name__)
C = ConversationState
ENDED = (C.COMPLETED, C.PARTNER_LEFT, C.FAILED, C.CLOSED)
FLAG = "flag"


@dataclass
class Tally:
    passed: int = 0
    total: int = 0

    @property
    def score(self) -> int:
        return round(100 * self.passed / self.total) if self.total else 100


@dataclass
class RunGold:
    """What one run's gold checks have shown so far (rebuilt from the store after a restart)."""

    seen: set[str] = field(default_factory=set)  # conversations read
    tallies: dict[str, Tally] = field(default_factory=dict)  # worker id -> their checks
    pushed: dict[str, int] = field(default_factory=dict)  # worker id -> score last pushed to MTurk


def flag_id(agent_id: str) -> str:
    return "gold-" + hashlib.sha256(f"gold-flag:{agent_id}".encode()).hexdigest()[:40]


class GoldChecks:
    def __init__(self, store: Store, review: Review, quals: Qualifications) -> None:
        self.store = store
        self.review = review
        self.quals = quals
        self.records = ReviewStore(store)
        self._runs: dict[str, RunGold] = {}

    async def tend(self, run_id: str, task: Task, *, on_mturk: bool) -> None:
        """Read the run's newly ended conversations and apply the policy. `on_mturk`: the run's workers are
        MTurk's (scores and blocks go there too); otherwise a block is Parley's own and no score is pushed."""
        policy = task.gold
        if policy is None:
            return
        state = self._runs.setdefault(run_id, RunGold())
        touched: set[str] = set()
        for conv in await self.store.conversations(run_id, states=ENDED, kind=None):
            if conv.id in state.seen:
                continue
            state.seen.add(conv.id)
            data = await self.store.world_data(conv.id)
            checks: list[dict[str, Any]] = (data or {}).get(GOLD_KEY) or []
            for check in checks:
                agent_id = conv.participants.get(str(check.get("role")))
                agent = await self.store.get_agent(agent_id) if agent_id else None
                if agent is None:
                    continue
                tally = state.tallies.setdefault(agent.worker_id, Tally())
                tally.total += 1
                tally.passed += bool(check.get("passed"))
                touched.add(agent.worker_id)
                if not check.get("passed") and policy.flag_for_rejection:
                    await self.records.record(ReviewAction(
                        id=flag_id(agent.id), run_id=run_id, agent_id=agent.id, worker_id=agent.worker_id,
                        assignment_id=agent.assignment_id, action=FLAG, actor="gold",
                        reason=f"failed gold check {check.get('item') or ''}".strip()[:1024],
                    ))
        for worker_id in sorted(touched):
            await self._consequences(run_id, worker_id, state, policy, on_mturk)

    async def _consequences(
        self, run_id: str, worker_id: str, state: RunGold, policy: GoldPolicy, on_mturk: bool
    ) -> None:
        tally = state.tallies[worker_id]
        if tally.total < policy.min_checks:
            return
        if policy.qualification and on_mturk and state.pushed.get(worker_id) != tally.score:
            type_id = await self.quals.type_id(policy.qualification, f"Set by Parley: percent of gold checks passed "
                                                                      f"({policy.qualification}).")
            await self.quals.mturk.call("AssociateQualificationWithWorker", QualificationTypeId=type_id,
                                        WorkerId=worker_id, IntegerValue=tally.score, SendNotification=False)
            state.pushed[worker_id] = tally.score
        if tally.score < policy.soft_block_below and await self.store.worker_block(worker_id) is None:
            reason = (f"run {run_id}: passed {tally.passed} of {tally.total} gold checks ({tally.score}%, below "
                      f"{policy.soft_block_below}%)")
            if on_mturk:
                await self.review.block(worker_id, reason)
            else:
                await self.store.set_worker_block(worker_id, reason=reason)
            await self.records.record(ReviewAction(
                id=flag_id(f"block:{run_id}:{worker_id}"), run_id=run_id, worker_id=worker_id, action="block",
                reason=reason, actor="gold",
            ))
            log.info("gold checks: soft-blocked %s (%s)", worker_id, reason)
