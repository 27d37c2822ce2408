"""What the emulated workspace has spent and holds: rewards, bonuses, Prolific's fee and the VAT on it.

Prolific reserves a study's rewards and fees when it is published (and when places are added), pays the
reward of each approved submission, and releases what no one earned when the study completes. Rejected,
returned and timed-out submissions are not paid.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.prolific_sandbox.model import (
    CURRENCY,
    FEE_PERCENT,
    VAT_PERCENT,
    ProlificState,
    StudyStatus,
    SubmissionStatus,
)

OPEN = (StudyStatus.ACTIVE, StudyStatus.PAUSED, StudyStatus.AWAITING_REVIEW)
MAY_BE_PAID = (SubmissionStatus.ACTIVE, SubmissionStatus.AWAITING_REVIEW)


@dataclass(frozen=True)
class Charge:
    paid: int
    fees: int
    vat: int

    @property
    def total(self) -> int:
        return self.paid + self.fees + self.vat


def _fee(amount: int) -> tuple[int, int]:
    fee = round(amount * FEE_PERCENT / 100)
    return fee, round(fee * VAT_PERCENT / 100)


def place_cost(rewards: int) -> Charge:
    return Charge(rewards, *_fee(rewards))


def bonus_cost(amount: int) -> Charge:
    return Charge(amount, *_fee(amount))


def _add(a: Charge, b: Charge) -> Charge:
    return Charge(a.paid + b.paid, a.fees + b.fees, a.vat + b.vat)


def spent(state: ProlificState) -> tuple[Charge, Charge]:
    """(rewards paid with their fees, bonuses paid with their fees)."""
    rewards = Charge(0, 0, 0)
    for sub in state.submissions.values():
        if sub.status == SubmissionStatus.APPROVED:
            rewards = _add(rewards, place_cost(state.studies[sub.study_id].reward))
    bonuses = Charge(0, 0, 0)
    for bonus in state.bonuses.values():
        for _ in range(bonus.times_paid):
            bonuses = _add(bonuses, Charge(bonus.amount, bonus.fees, bonus.vat))
    return rewards, bonuses


def held(state: ProlificState) -> int:
    """Reserved for places that may still be paid: every unpaid place of an open study, and the submissions
    awaiting review of a completed one."""
    total = 0
    for study in state.studies.values():
        subs = [s for s in state.submissions.values() if s.study_id == study.id]
        if study.status in OPEN:
            settled = sum(1 for s in subs if s.status == SubmissionStatus.APPROVED)
            unpaid = max(0, study.total_available_places - settled)
        elif study.status == StudyStatus.COMPLETED:
            unpaid = sum(1 for s in subs if s.status in MAY_BE_PAID)
        else:
            continue
        total += place_cost(study.reward * unpaid).total
    return total


def available(state: ProlificState, now: float) -> int:
    rewards, bonuses = spent(state)
    return state.funds - rewards.total - bonuses.total - held(state)


def balance(state: ProlificState, now: float) -> dict[str, object]:
    rewards, bonuses = spent(state)
    total = state.funds - rewards.total - bonuses.total
    breakdown = {
        "rewards": rewards.paid, "bonuses": bonuses.paid, "fees": rewards.fees + bonuses.fees,
        "vat": rewards.vat + bonuses.vat,
    }
    return {
        "currency_code": CURRENCY, "total_balance": total, "balance_breakdown": breakdown,
        "available_balance": total - held(state),
        "available_balance_breakdown": {"reserved": held(state)},
    }
