"""Review actions from the dashboard (and the CLI): approve, reject, bonus, block, approve a whole run.

Work on a HIT Parley published goes through the HIT manager's `Review` (MTurk first, then Parley's
records); work on a run recruited on Prolific goes through the Prolific provider (Prolific first, then the
agent's state; a rejection there takes Prolific's category OTHER). Work that is on neither (a run served
without a provider, a test crowd) is reviewed in Parley only: the agent's state moves and the decision is
recorded, and no money can move, so bonuses are refused. Every decision is recorded with its reason in
`review_action`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from server.agents import new_id
from server.hits.manager import RunMoves
from server.hits.plan import cents, dollars
from server.hits.review import ReviewError
from server.hits.sync import AgentMoves, StoreMoves
from server.providers.base import BudgetExceeded as OverBudget
from server.providers.base import RejectionCategory
from server.providers.mturk import MTurkError
from server.providers.prolific import BonusUncertain, ProlificError, ProlificProvider, ProlificRefusal
from server.registry import Runs
from server.states import AgentState
from server.store import AgentRow, Store
from server.store.hits import BudgetExceeded, HitStore
from server.store.review import ReviewAction, ReviewStore

S = AgentState
MAX_REASON = 1024
MAX_BONUS_CENTS = 100_00
MTURK_WORKER_ID = re.compile(r"A[A-Z0-9]{1,63}")  # other ids (test crowds, local runs) are blocked in Parley only
PROLIFIC_ID = re.compile(r"[0-9a-f]{24}")  # Prolific's participant ids


class Reviewer(Protocol):
    """The MTurk side of a review; `server.hits.review.Review` (the HIT manager's `.review`) is one."""

    async def approve(self, assignment_id: str, feedback: str = "", *, override_rejection: bool = False) -> None: ...

    async def reject(self, assignment_id: str, reason: str) -> None: ...

    async def bonus(self, assignment_id: str, amount: str | float, reason: str, *, key: str = "") -> Any: ...

    async def block(self, worker_id: str, reason: str) -> None: ...


class ReviewRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Outcome:
    action: str
    agent_id: str
    worker_id: str
    state: str
    via: str  # "mturk", "prolific" or "parley"
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ReviewDesk:
    """Review decisions for one store. `mturk` is the HIT manager's Review, or None when none runs."""

    def __init__(
        self, *, store: Store, runs: Runs | None, mturk: Reviewer | None = None,
        prolific: ProlificProvider | None = None,
    ) -> None:
        self.store = store
        self.runs = runs
        self.mturk = mturk
        self.prolific = prolific
        self.records = ReviewStore(store)
        self.hit_store = HitStore(store)

    async def approve(self, agent_id: str, *, feedback: str = "", actor: str = "admin") -> Outcome:
        agent = await self._agent(agent_id)
        feedback = _limited(feedback, "feedback")
        if agent.state == S.APPROVED:
            return await self._outcome("approve", agent, via="parley", duplicate=True)
        if agent.state not in (S.SUBMITTED, S.REJECTED):
            raise _not_reviewable(agent, "approved")
        via = await self._route(agent)
        if via == "mturk":
            await self._mturk(self._reviewer().approve(
                agent.assignment_id, feedback, override_rejection=agent.state == S.REJECTED
            ))
        else:
            if via == "prolific":
                await self._mturk(self._prolific().approve(agent.assignment_id, feedback))
            await self._move(agent, S.APPROVED)
        await self._record(agent, "approve", feedback, actor=actor)
        return await self._outcome("approve", agent, via=via)

    async def reject(self, agent_id: str, *, reason: str, actor: str = "admin") -> Outcome:
        reason = _required(reason, "A rejection needs a reason: the worker sees it, and it lowers their approval rate.")
        agent = await self._agent(agent_id)
        if agent.state == S.REJECTED:
            return await self._outcome("reject", agent, via="parley", duplicate=True)
        if agent.state != S.SUBMITTED:
            raise _not_reviewable(agent, "rejected")
        via = await self._route(agent)
        if via == "mturk":
            await self._mturk(self._reviewer().reject(agent.assignment_id, reason))
        else:
            if via == "prolific":
                await self._mturk(self._prolific().reject(agent.assignment_id, reason, RejectionCategory.OTHER))
            await self._move(agent, S.REJECTED)
        await self._record(agent, "reject", reason, actor=actor)
        return await self._outcome("reject", agent, via=via)

    async def bonus(
        self, agent_id: str, *, amount_cents: int, reason: str, key: str = "", actor: str = "admin"
    ) -> Outcome:
        """Pay once per (agent, key): a retry with the same key is recorded and paid only the first time."""
        reason = _required(reason, "A bonus needs a reason; the worker reads it.")
        if not 0 < amount_cents <= MAX_BONUS_CENTS:
            raise ReviewRefused(422, "invalid_amount", f"A bonus is between $0.01 and ${dollars(MAX_BONUS_CENTS)}.")
        agent = await self._agent(agent_id)
        intent = key or f"{amount_cents}:{reason}"
        action_id = "bonus-" + hashlib.sha256(f"{agent.id}:{intent}".encode()).hexdigest()[:48]
        if await self.records.action(action_id) is not None:
            via = "prolific" if await self._route(agent) == "prolific" else "mturk"
            return await self._outcome("bonus", agent, via=via, duplicate=True)
        if await self._route(agent) == "prolific":
            plan = await self._prolific().plan(agent.run_id)
            await self._mturk(self._prolific().bonus(
                agent.assignment_id, amount_cents, reason, key=action_id,
                budget_cents=plan.budget_cents if plan is not None else 0,
            ))
            await self._record(agent, "bonus", reason, actor=actor, amount_cents=amount_cents, action_id=action_id)
            return await self._outcome("bonus", agent, via="prolific")
        if await self._route(agent) != "mturk":
            raise ReviewRefused(
                409, "not_on_mturk",
                "This work is not on a HIT Parley published on MTurk, so there is no assignment to pay a bonus on.",
            )
        await self._mturk(self._reviewer().bonus(
            agent.assignment_id, dollars(amount_cents), reason, key=key or action_id
        ))
        await self._record(agent, "bonus", reason, actor=actor, amount_cents=amount_cents, action_id=action_id)
        return await self._outcome("bonus", agent, via="mturk")

    async def block(self, worker_id: str, *, reason: str, actor: str = "admin") -> Outcome:
        """A soft block: Parley refuses the worker from now on, and MTurk hides Parley's HITs from them
        (for an id MTurk could have issued, when a HIT manager runs)."""
        reason = _required(reason, "A block needs a reason; it is kept with the worker's record.")
        await self.store.set_worker_block(worker_id, reason=reason)
        via = "parley"
        if self.mturk is not None and MTURK_WORKER_ID.fullmatch(worker_id):
            await self._mturk(self.mturk.block(worker_id, reason))
            via = "mturk"
        elif self.prolific is not None and PROLIFIC_ID.fullmatch(worker_id):
            await self._mturk(self.prolific.block(worker_id, reason))
            via = "prolific"
        await self.records.record(ReviewAction(
            id=new_id(), worker_id=worker_id, action="block", reason=reason, actor=actor,
        ))
        return Outcome("block", "", worker_id, "blocked", via)

    async def approve_run(self, run_id: str, *, feedback: str = "", actor: str = "admin") -> dict[str, Any]:
        """Approve every submitted assignment of a run. Failures are reported per agent, not raised."""
        approved: list[str] = []
        failed: dict[str, str] = {}
        for agent in await self.records.agents_in_states(run_id, [S.SUBMITTED]):
            try:
                await self.approve(agent.id, feedback=feedback, actor=actor)
                approved.append(agent.id)
            except ReviewRefused as exc:
                failed[agent.id] = exc.message
        return {"run_id": run_id, "approved": approved, "failed": failed}

    # ---- helpers ------------------------------------------------------------------------------

    async def _agent(self, agent_id: str) -> AgentRow:
        agent = await self.store.get_agent(agent_id)
        if agent is None:
            raise ReviewRefused(404, "unknown_agent", f"There is no agent {agent_id!r}.")
        return agent

    async def _route(self, agent: AgentRow) -> str:
        if self.mturk is not None and await self.hit_store.hit_for_assignment(agent.assignment_id) is not None:
            return "mturk"
        if self.prolific is not None and await self.prolific.plan(agent.run_id) is not None:
            return "prolific"
        return "parley"

    def _reviewer(self) -> Reviewer:
        assert self.mturk is not None
        return self.mturk

    def _prolific(self) -> ProlificProvider:
        assert self.prolific is not None
        return self.prolific

    async def _mturk(self, call: Any) -> None:
        try:
            await call
        except ReviewError as exc:
            raise ReviewRefused(422, "review_refused", str(exc)) from exc
        except BudgetExceeded as exc:
            raise ReviewRefused(409, "budget_exceeded", str(exc)) from exc
        except MTurkError as exc:
            raise ReviewRefused(502, "mturk_error", f"MTurk refused: {exc.code}: {exc.message}") from exc
        except ProlificRefusal as exc:
            raise ReviewRefused(422, "review_refused", str(exc)) from exc
        except (OverBudget, BonusUncertain) as exc:
            raise ReviewRefused(409, "budget_exceeded" if isinstance(exc, OverBudget) else "bonus_uncertain",
                                str(exc)) from exc
        except ProlificError as exc:
            status, code = (409, "prolific_refused") if 400 <= exc.status < 500 else (502, "prolific_error")
            raise ReviewRefused(status, code, f"Prolific refused: {exc.status} {exc.title}: {exc.detail}") from exc

    async def _move(self, agent: AgentRow, target: AgentState) -> None:
        moves: AgentMoves = RunMoves(self.runs, self.store) if self.runs is not None else StoreMoves(self.store)
        if not await moves.move(agent.run_id, agent, target):
            raise _not_reviewable(agent, target.value)

    async def _record(
        self, agent: AgentRow, action: str, reason: str, *, actor: str, amount_cents: int = 0,
        action_id: str | None = None,
    ) -> None:
        await self.records.record(ReviewAction(
            id=action_id or new_id(), run_id=agent.run_id, agent_id=agent.id, worker_id=agent.worker_id,
            assignment_id=agent.assignment_id, action=action, reason=reason, amount_cents=amount_cents, actor=actor,
        ))

    async def _outcome(self, action: str, agent: AgentRow, *, via: str, duplicate: bool = False) -> Outcome:
        fresh = await self.store.get_agent(agent.id)
        state = fresh.state if fresh is not None else agent.state
        return Outcome(action, agent.id, agent.worker_id, state, via, duplicate)


def parse_amount(amount: str | float) -> int:
    """Dollars as a person types them ("0.50", "$2", " 1.5 ") in cents, or a refusal that says what to type."""
    text = str(amount).strip().removeprefix("$").strip()
    if not text:
        raise ReviewRefused(422, "invalid_amount", "Enter the bonus in dollars, like 0.50.")
    try:
        value = Decimal(text)
        whole_cents = value.is_finite() and value == value.quantize(Decimal("0.01"))
    except ArithmeticError:  # not a number, or too large to hold in cents
        value, whole_cents = Decimal("NaN"), False
    if not value.is_finite():
        raise ReviewRefused(422, "invalid_amount", f"“{text}” is not an amount in dollars: enter it like 0.50.")
    if not whole_cents:
        raise ReviewRefused(
            422, "invalid_amount", "Bonuses are paid in whole cents: enter at most two decimals, like 0.50."
        )
    return cents(value)


def _required(text: str, message: str) -> str:
    text = text.strip()
    if not text:
        raise ReviewRefused(422, "reason_required", message)
    return _limited(text, "reason")


def _limited(text: str, what: str) -> str:
    if len(text) > MAX_REASON:
        raise ReviewRefused(422, "too_long", f"The {what} is limited to {MAX_REASON} characters.")
    return text


def _not_reviewable(agent: AgentRow, verb: str) -> ReviewRefused:
    return ReviewRefused(
        409, "not_reviewable",
        f"This assignment is {agent.state}; only submitted work can be {verb}.",
    )
