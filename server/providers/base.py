"""The seam between Parley and a recruitment provider (MTurk, Prolific).

What the HIT manager, review and the budget need from a provider, in words of neither: a run is published
as a *recruitment* (MTurk: HITs, one per slot; Prolific: one study with places); a person who takes a slot
makes a *submission* (MTurk: an assignment; Prolific: a submission, whose id is the study's SESSION_ID);
review approves, rejects, pays a bonus or blocks; the budget asks what a place and a bonus cost with the
provider's fees. The words a requester reads stay the provider's own (`Words`).

Nothing here talks to a network or a database: providers implement `Provider`, callers speak through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Words:
    """How the provider names things, for the dashboard, the CLI and the docs."""

    provider: str  # "MTurk", "Prolific"
    recruitment: str  # what a run is published as: "HIT", "study"
    place: str  # one person's slot in it: "assignment", "place"
    submission: str  # what a person hands in: "assignment", "submission"
    worker: str  # "worker", "participant"
    block_list: str  # "soft-block qualification", "participant group"

    def plural(self, word: str) -> str:
        return word if word.endswith("s") else word + "s"


MTURK_WORDS = Words(
    provider="MTurk", recruitment="HIT", place="assignment", submission="assignment", worker="worker",
    block_list="soft-block qualification",
)
PROLIFIC_WORDS = Words(
    provider="Prolific", recruitment="study", place="place", submission="submission", worker="participant",
    block_list="participant group",
)


class Feature(StrEnum):
    """What a provider may support; each provider's `supports` says which it does. The values are the rows of
    the table in docs/providers.md, which a test checks against the providers."""

    EMULATOR = "Built-in emulator, zero configuration"
    RUN = "`parley run TASK --provider NAME`"
    TOP_UP = "Top-up to the run's need; stop when done or stopped"
    RECONCILE = "Start-up reconciliation after a crash"
    PREVIEW = "Preview of the task before taking a place"
    IN_PROGRESS_LISTED = "Work in progress listed by the provider"
    RETURNED_MOVES_AGENT = "A returned or timed-out place moves the agent"
    REVIEW = "Approve / reject"
    REJECTION_CATEGORIES = "Rejection categories"
    BONUS_ONCE = "Bonus paid once under retry and restart"
    BLOCK = "Block list"
    EXCLUDE = "Exclusion lists (onboarding failed)"
    CAPS_HIDDEN = "Per-worker caps enforced by the provider"
    BUDGET_FEES = "Budget cap counting the provider's fees"
    VAT = "VAT on fees counted"
    FORM_RUNS = "Form runs (one HTMLQuestion HIT per item)"
    NOTIFY = "Message workers"
    DASHBOARD = "Review dashboard"


class SubmissionStatus(StrEnum):
    """A submission's status in provider-neutral terms (MTurk's and Prolific's map onto these)."""

    ACTIVE = "active"  # the person is working
    AWAITING_REVIEW = "awaiting_review"  # handed in, not yet reviewed
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"  # the person gave the place back
    TIMED_OUT = "timed_out"  # the person ran out of time


class RejectionCategory(StrEnum):
    """Why work is rejected. Prolific requires one of its categories; MTurk only reads the reason text."""

    TOO_QUICKLY = "TOO_QUICKLY"
    TOO_SLOWLY = "TOO_SLOWLY"
    FAILED_INSTRUCTIONS = "FAILED_INSTRUCTIONS"
    INCOMP_LONGITUDINAL = "INCOMP_LONGITUDINAL"
    FAILED_CHECK = "FAILED_CHECK"
    LOW_EFFORT = "LOW_EFFORT"
    MALINGERING = "MALINGERING"
    NO_CODE = "NO_CODE"
    BAD_CODE = "BAD_CODE"
    NO_DATA = "NO_DATA"
    UNSUPP_DEVICE = "UNSUPP_DEVICE"
    OTHER = "OTHER"


@dataclass(frozen=True)
class RecruitmentSpec:
    """What a run asks of the provider: where the task page is, what it pays, how long it takes."""

    run_id: str
    title: str
    description: str
    task_url: str  # Parley's task page for the run; the provider adds its own parameters
    reward_cents: int  # per place, in the account currency's minor units
    estimated_minutes: int
    max_minutes: int
    devices: tuple[str, ...] = ("desktop",)
    # Parley's own exclusion lists (e.g. who failed the task's onboarding): their members never see it.
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recruitment:
    """A published run as the provider sees it now."""

    id: str
    run_id: str
    status: str  # the provider's own status word (e.g. Prolific's ACTIVE, PAUSED, COMPLETED)
    places: int  # places offered in total
    taken: int  # places taken (started, handed in or paid)
    open: bool  # whether new people can still take a place


@dataclass(frozen=True)
class Submission:
    id: str
    recruitment_id: str
    worker_id: str
    status: SubmissionStatus
    provider_status: str  # the provider's own word, shown to the requester
    code: str = ""  # the completion code it was handed in with (Prolific)


@dataclass(frozen=True)
class Cost:
    """Money in minor units: what people receive, and what the provider charges on top."""

    paid_cents: int
    fee_cents: int
    vat_cents: int = 0

    @property
    def total_cents(self) -> int:
        return self.paid_cents + self.fee_cents + self.vat_cents


@dataclass(frozen=True)
class Bonus:
    key: str  # Parley's idempotency key: the same key never pays twice
    submission_id: str
    worker_id: str
    cost: Cost
    paid: bool
    provider_ids: tuple[str, ...] = field(default_factory=tuple)


class BudgetExceeded(Exception):
    """Publishing more (or paying this bonus) would pass the run's budget cap; nothing was spent."""


@runtime_checkable
class Provider(Protocol):
    """One requester account on one provider. Every call is bounded and retried where safe; every call that
    spends money is idempotent under retry (a token, or a record written before the call)."""

    words: Words
    supports: frozenset[Feature]
    account: str  # names the account: records are never mixed across accounts
    is_live: bool  # real money

    def place_cost(self, reward_cents: int) -> Cost: ...

    def bonus_cost(self, amount_cents: int) -> Cost: ...

    async def publish(self, spec: RecruitmentSpec, places: int, *, budget_cents: int = 0) -> Recruitment:
        """Make the run's recruitment offer `places` in total (create and publish it, or top it up).
        Raises BudgetExceeded when that would pass `budget_cents` (0: no cap)."""
        ...

    async def expire(self, run_id: str) -> None:
        """Take no more people for the run; those working may finish."""
        ...

    async def recruitments(self) -> list[Recruitment]:
        """Every recruitment of this account that Parley published (the start-up reconciliation)."""
        ...

    async def submissions(self, run_id: str) -> list[Submission]: ...

    async def approve(self, submission_id: str, feedback: str = "") -> Submission: ...

    async def reject(self, submission_id: str, reason: str, category: RejectionCategory) -> Submission: ...

    async def bonus(
        self, submission_id: str, amount_cents: int, reason: str, *, key: str, budget_cents: int = 0
    ) -> Bonus:
        """Pay once per `key`, across retries and restarts; BudgetExceeded past `budget_cents` (0: no cap)."""
        ...

    async def block(self, worker_id: str, reason: str) -> None: ...

    async def exclude(self, name: str, worker_id: str) -> None:
        """Add the worker to Parley's exclusion list `name` (see `RecruitmentSpec.excluded`)."""
        ...

    async def unblock(self, worker_id: str) -> None: ...

    async def spent_cents(self, run_id: str) -> int:
        """What the run may cost at most now: every place offered, with fees, plus bonuses."""
        ...

    async def aclose(self) -> None: ...
