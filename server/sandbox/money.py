"""Money in integer cents, and MTurk's fee rules.

MTurk charges a 20% commission on rewards and bonuses, 40% on the reward of a HIT with 10 or more
assignments, at least $0.01 per assignment or bonus; a fee is rounded half up to the cent.
"""

from __future__ import annotations

import re

from server.sandbox.errors import RequestError

_AMOUNT = re.compile(r"^([0-9]+)(?:\.([0-9]{0,2}))?$")
BASE_FEE_PERCENT = 20
LARGE_HIT_FEE_PERCENT = 40
LARGE_HIT_ASSIGNMENTS = 10
MINIMUM_FEE_CENTS = 1


def parse_cents(amount: str, field: str) -> int:
    match = _AMOUNT.match(amount)
    if match is None:
        raise RequestError(f"{field} '{amount}' is not a valid currency amount.")
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(fraction)


def format_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _fee(cents: int, percent: int) -> int:
    return max(MINIMUM_FEE_CENTS, (cents * percent + 50) // 100)


def reward_fee_cents(reward_cents: int, max_assignments: int) -> int:
    """MTurk's commission on one assignment's reward."""
    percent = LARGE_HIT_FEE_PERCENT if max_assignments >= LARGE_HIT_ASSIGNMENTS else BASE_FEE_PERCENT
    return _fee(reward_cents, percent)


def bonus_fee_cents(bonus_cents: int) -> int:
    return _fee(bonus_cents, BASE_FEE_PERCENT)
