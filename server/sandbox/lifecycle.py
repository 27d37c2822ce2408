"""Time and derived facts: what a HIT's status is now, what the balance is now.

Nothing here runs in the background. ``advance`` is called with ``clock()`` whenever the state is read
and applies what time has decided since: assignments past their deadline are abandoned, submitted ones
past their auto-approval time are approved. HIT status and the balance are computed from the records,
so an expiry needs no event: a HIT past its Expiration simply stops being assignable and stops holding
funds for its unused slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.sandbox.model import HIT, HOLDS_A_SLOT, AssignmentStatus, SandboxState


class HITStatus(StrEnum):
    ASSIGNABLE = "Assignable"
    UNASSIGNABLE = "Unassignable"
    REVIEWABLE = "Reviewable"
    REVIEWING = "Reviewing"
    DISPOSED = "Disposed"


def advance(state: SandboxState, now: float) -> bool:
    """Apply deadlines and auto-approvals due by ``now``; True when anything changed."""
    changed = False
    for assignment in state.assignments.values():
        if assignment.status is AssignmentStatus.ACCEPTED and now >= assignment.deadline:
            assignment.move_to(AssignmentStatus.ABANDONED)
            assignment.ended_time = assignment.deadline
            changed = True
        elif (
            assignment.status is AssignmentStatus.SUBMITTED
            and assignment.auto_approval_time is not None
            and now >= assignment.auto_approval_time
        ):
            assignment.move_to(AssignmentStatus.APPROVED)
            assignment.approval_time = assignment.auto_approval_time
            changed = True
    return changed


@dataclass(frozen=True)
class HITCounts:
    """MTurk's counters: pending = being worked on, completed = approved or rejected."""

    accepted: int
    submitted: int
    approved: int
    rejected: int
    available: int

    @property
    def pending(self) -> int:
        return self.accepted

    @property
    def completed(self) -> int:
        return self.approved + self.rejected


def is_expired(hit: HIT, now: float) -> bool:
    return now >= hit.expiration


def hit_counts(state: SandboxState, hit: HIT, now: float) -> HITCounts:
    by_status = dict.fromkeys(AssignmentStatus, 0)
    for assignment_id in hit.assignment_ids:
        by_status[state.assignments[assignment_id].status] += 1
    taken = sum(by_status[status] for status in HOLDS_A_SLOT)
    open_for_work = not hit.disposed and not is_expired(hit, now)
    return HITCounts(
        accepted=by_status[AssignmentStatus.ACCEPTED],
        submitted=by_status[AssignmentStatus.SUBMITTED],
        approved=by_status[AssignmentStatus.APPROVED],
        rejected=by_status[AssignmentStatus.REJECTED],
        available=max(0, hit.max_assignments - taken) if open_for_work else 0,
    )


def hit_status(state: SandboxState, hit: HIT, now: float) -> HITStatus:
    if hit.disposed:
        return HITStatus.DISPOSED
    counts = hit_counts(state, hit, now)
    if counts.available > 0:
        return HITStatus.ASSIGNABLE
    if counts.accepted > 0:
        return HITStatus.UNASSIGNABLE
    return HITStatus.REVIEWING if hit.reviewing else HITStatus.REVIEWABLE


@dataclass(frozen=True)
class Balance:
    available_cents: int
    on_hold_cents: int


def balance(state: SandboxState, now: float) -> Balance:
    """Funds minus what is spent (approved work, bonuses) and what is held (slots that may still cost).

    A slot holds reward + fee while it is open, being worked on or submitted; an approved slot is spent;
    a rejected slot, and an unused slot of an expired or deleted HIT, costs nothing (it is refunded).
    """
    spent = sum(bonus.amount_cents + bonus.fee_cents for bonus in state.bonuses)
    held = 0
    for hit in state.hits.values():
        counts = hit_counts(state, hit, now)
        spent += counts.approved * hit.charge_cents
        held += (counts.accepted + counts.submitted + counts.available) * hit.charge_cents
    return Balance(available_cents=state.funds_cents - spent - held, on_hold_cents=held)
