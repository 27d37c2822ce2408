"""The states Parley records, an enum each: agents, conversations, runs, HIT records, bonuses and
compensations. An agent's state moves only through `transition`, which refuses illegal moves; a
conversation's is set once, when it ends (`server/conversations.py`). The values are what the database
stores and the wire carries.

The worker page never retypes these names: it reads them, with their labels, from `describe_states()`.
"""

from __future__ import annotations

from enum import StrEnum


class AgentState(StrEnum):
    JOINED = "joined"
    ONBOARDING = "onboarding"
    WAITING = "waiting"
    IN_TASK = "in_task"
    DONE = "done"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    # exits
    ONBOARDING_FAILED = "onboarding_failed"
    RETURNED = "returned"
    DISCONNECTED = "disconnected"
    TIMED_OUT = "timed_out"
    PARTNER_LEFT = "partner_left"
    WAITING_EXPIRED = "waiting_expired"
    CLOSED = "closed"
    EXPIRED = "expired"
    BLOCKED = "blocked"


class ConversationState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    PARTNER_LEFT = "partner_left"
    FAILED = "failed"
    CLOSED = "closed"


class RunStatus(StrEnum):
    """A task run's status (`task_run.status`). Stopped: joins are refused and no HIT is published; `parley
    run` makes it active again."""

    ACTIVE = "active"
    STOPPED = "stopped"


class HitStatus(StrEnum):
    """A HIT record's status (`mturk_hit.status`)."""

    CREATING = "creating"  # reserved, MTurk has not confirmed
    OPEN = "open"  # assignable
    TAKEN = "taken"  # a worker has it
    CLOSED = "closed"  # no longer assignable, its assignments not yet looked at
    SUBMITTED = "submitted"  # work awaits review
    REVIEWED = "reviewed"  # approved or rejected
    EXPIRED = "expired"  # closed with no work (its charge is released)
    FAILED = "failed"  # MTurk never made it (nothing was charged)


class AssignmentStatus(StrEnum):
    """MTurk's status of a submitted assignment, in MTurk's own words (`assignment_status` of a HIT record or a
    form answer): MTurk's vocabulary, kept as MTurk says it; `hit_count` maps it onto Parley's."""

    SUBMITTED = "Submitted"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class HitCount(StrEnum):
    """What the dashboard and `/metrics` count a HIT as: its `HitStatus`, except that a reviewed HIT with one
    assignment counts as approved or rejected, as that assignment's MTurk status says (`hit_count`)."""

    CREATING = HitStatus.CREATING.value
    OPEN = HitStatus.OPEN.value
    TAKEN = HitStatus.TAKEN.value
    CLOSED = HitStatus.CLOSED.value
    SUBMITTED = HitStatus.SUBMITTED.value
    APPROVED = "approved"  # reviewed: its assignment approved
    REJECTED = "rejected"  # reviewed: its assignment rejected
    REVIEWED = HitStatus.REVIEWED.value  # reviewed, no one outcome: a form HIT's several assignments
    EXPIRED = HitStatus.EXPIRED.value
    FAILED = HitStatus.FAILED.value


# Keyed by the stored words (a StrEnum member hashes as its value).
_REVIEW_OUTCOME: dict[str, HitCount] = {
    AssignmentStatus.APPROVED: HitCount.APPROVED, AssignmentStatus.REJECTED: HitCount.REJECTED,
}


def hit_count(status: str, assignment_status: str = "") -> HitCount:
    """The one mapping from a HIT record (Parley's `HitStatus`, MTurk's `AssignmentStatus` of its assignment)
    to what it is counted as."""
    if status == HitStatus.REVIEWED:
        return _REVIEW_OUTCOME.get(assignment_status, HitCount.REVIEWED)
    return HitCount(status)


class BonusStatus(StrEnum):
    """An MTurk bonus record's status (`mturk_bonus.status`)."""

    SENDING = "sending"  # recorded (its money reserved), MTurk's SendBonus not yet confirmed
    PAID = "paid"


class ProlificBonusState(StrEnum):
    """A Prolific bonus record's state (`prolific_bonus.state`): Prolific pays in two calls."""

    CREATED = "created"  # recorded (its money reserved), not yet asked to pay
    PAYING = "paying"  # one caller is paying it; put back to created if the payment fails
    PAID = "paid"


class CompensationStatus(StrEnum):
    """A compensation record's status (`mturk_compensation.status`, `parley compensate`)."""

    CREATING = "creating"  # reserved, MTurk not yet asked or not yet answered
    OPEN = "open"  # published, seen only by its worker
    PAID = "paid"  # submitted and approved
    EXPIRED = "expired"  # closed unworked (its charge is released)
    FAILED = "failed"  # MTurk refused it (nothing spent)


class IllegalTransition(ValueError):
    def __init__(self, current: AgentState, target: AgentState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        super().__init__(f"Expected a move from {current!r} to one of [{allowed}], got {target!r}")
        self.current = current
        self.target = target


_S = AgentState
# Exits any live state may take: the worker returns the HIT, leaves for good, or is blocked.
_LIVE_EXITS = {_S.RETURNED, _S.DISCONNECTED, _S.BLOCKED, _S.EXPIRED}
# States after the work is over, from which the worker may still submit the assignment.
_SUBMITTABLE_EXITS = {_S.SUBMITTED, _S.RETURNED, _S.EXPIRED, _S.BLOCKED}

TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    _S.JOINED: frozenset({_S.ONBOARDING, _S.WAITING, _S.CLOSED, *_LIVE_EXITS}),
    _S.ONBOARDING: frozenset({_S.WAITING, _S.ONBOARDING_FAILED, _S.TIMED_OUT, _S.CLOSED, *_LIVE_EXITS}),
    _S.WAITING: frozenset({_S.IN_TASK, _S.WAITING_EXPIRED, _S.CLOSED, *_LIVE_EXITS}),
    _S.IN_TASK: frozenset({_S.DONE, _S.TIMED_OUT, _S.PARTNER_LEFT, _S.CLOSED, *_LIVE_EXITS}),
    _S.DONE: frozenset(_SUBMITTABLE_EXITS),
    _S.PARTNER_LEFT: frozenset(_SUBMITTABLE_EXITS),
    _S.WAITING_EXPIRED: frozenset(_SUBMITTABLE_EXITS),
    _S.CLOSED: frozenset(_SUBMITTABLE_EXITS),
    _S.SUBMITTED: frozenset({_S.APPROVED, _S.REJECTED, _S.BLOCKED}),
    _S.REJECTED: frozenset({_S.APPROVED}),
    _S.APPROVED: frozenset(),
    _S.ONBOARDING_FAILED: frozenset({_S.RETURNED, _S.EXPIRED}),
    _S.TIMED_OUT: frozenset({_S.RETURNED, _S.EXPIRED, _S.SUBMITTED}),
    _S.DISCONNECTED: frozenset({_S.RETURNED, _S.EXPIRED, _S.SUBMITTED}),
    _S.RETURNED: frozenset(),
    # Work the provider reports submitted after the submission bound ran out is still recorded.
    _S.EXPIRED: frozenset({_S.SUBMITTED}),
    _S.BLOCKED: frozenset(),
}

# Live: the agent is still being taken through the task and holds a place in the run.
LIVE_STATES = frozenset({_S.JOINED, _S.ONBOARDING, _S.WAITING, _S.IN_TASK})
# Arriving: admitted and not yet in a conversation. The run's max_waiting cap counts these.
ARRIVING_STATES = frozenset({_S.JOINED, _S.ONBOARDING, _S.WAITING})
# Holding: a page has connected and is taken through the task. Only these count as a worker's open
# assignments (Caps.per_worker_concurrent): a join alone shows nothing (docs/protocol.md, "Claims").
HOLDING_STATES = frozenset({_S.ONBOARDING, _S.WAITING, _S.IN_TASK})
# Worked: with a conversation id, the agent took a unit of work (Caps.per_worker_total) and did not walk out.
WORKED_STATES = frozenset({_S.IN_TASK, _S.DONE, _S.SUBMITTED, _S.APPROVED, _S.REJECTED, _S.PARTNER_LEFT, _S.CLOSED})
# The page offers the submit button in these states.
SUBMITTABLE_STATES = frozenset({_S.DONE, _S.PARTNER_LEFT, _S.WAITING_EXPIRED, _S.CLOSED})

# What the page shows in each state: what happened and what to do next.
STATE_TEXT: dict[AgentState, str] = {
    _S.JOINED: "Connecting you to the task...",
    _S.ONBOARDING: "First, a short qualification task.",
    _S.WAITING: "Waiting for a partner. You will be paired as soon as one arrives.",
    _S.IN_TASK: "You are in the task.",
    _S.DONE: "The task is complete. Thank you! Please submit the HIT.",
    _S.SUBMITTED: "Submitted. Thank you! You can close this page.",
    _S.APPROVED: "Your work was approved. Thank you!",
    _S.REJECTED: "Your work was rejected.",
    _S.ONBOARDING_FAILED: (
        "You did not pass the qualification for this task, so you cannot continue. "
        "Please return this HIT."
    ),
    _S.RETURNED: "You returned this HIT.",
    _S.DISCONNECTED: "You were disconnected for too long and left the task. Please return this HIT.",
    _S.TIMED_OUT: "You did not answer in time and left the task. Please return this HIT.",
    _S.PARTNER_LEFT: "Your partner left the conversation. You can submit the HIT now and will be paid for it.",
    _S.WAITING_EXPIRED: (
        "No partner arrived in time. You can submit the HIT now and will be paid for your wait."
    ),
    _S.CLOSED: "The conversation was closed by the server. You can submit the HIT now and will be paid for it.",
    _S.EXPIRED: "This assignment has expired.",
    _S.BLOCKED: "You are no longer eligible for this task. Please return this HIT.",
}


def transition(current: AgentState, target: AgentState) -> AgentState:
    """Return `target` if the move is legal, raise IllegalTransition otherwise."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
    return target


def describe_states() -> dict[str, dict[str, object]]:
    return {
        state.value: {
            "text": STATE_TEXT[state],
            "live": state in LIVE_STATES,
            "can_submit": state in SUBMITTABLE_STATES,
            "final": state not in LIVE_STATES,
        }
        for state in AgentState
    }
