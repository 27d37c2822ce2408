"""Bulk bonus payments (create, then pay) and participant groups (Parley's block list)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from server.prolific_sandbox.errors import INSUFFICIENT_FUNDS, ProlificError, bad_request, invalid, not_found
from server.prolific_sandbox.model import BulkBonus, Group, ProlificState
from server.prolific_sandbox.money import available, bonus_cost
from server.prolific_sandbox.studies import study

MAX_ROWS = 200


def _rows(state: ProlificState, study_id: str, csv: Any) -> list[tuple[str, int]]:
    """`csv_bonuses`: one `id,amount` line per bonus, the id a participant's or a submission's of the study,
    the amount in the currency's major units (e.g. `5e8a...,1.50`)."""
    if not isinstance(csv, str) or not csv.strip():
        raise invalid("csv_bonuses", "This field is required.")
    members = {s.participant_id for s in state.submissions.values() if s.study_id == study_id}
    members |= {s.id for s in state.submissions.values() if s.study_id == study_id}
    rows = []
    for number, line in enumerate(csv.strip().splitlines(), start=1):
        ident, _, amount = (part.strip() for part in line.partition(","))
        try:
            minor = int((Decimal(amount) * 100).to_integral_exact())
        except (InvalidOperation, ValueError):
            raise invalid("csv_bonuses", f"Line {number}: {amount!r} is not an amount like 1.50.") from None
        if minor <= 0:
            raise invalid("csv_bonuses", f"Line {number}: a bonus must be positive.")
        if ident not in members:
            raise invalid("csv_bonuses", f"Line {number}: {ident} did not take part in study {study_id}.")
        rows.append((ident, minor))
    if len(rows) > MAX_ROWS:
        raise invalid("csv_bonuses", f"At most {MAX_ROWS} bonuses per request.")
    return rows


def create(state: ProlificState, body: dict[str, Any], now: float) -> BulkBonus:
    study_id = body.get("study_id")
    if not isinstance(study_id, str):
        raise invalid("study_id", "This field is required.")
    study(state, study_id)
    rows = _rows(state, study_id, body.get("csv_bonuses"))
    cost = bonus_cost(sum(amount for _, amount in rows))
    made = BulkBonus(
        id=state.new_id(), study=study_id, rows=rows, amount=cost.paid, fees=cost.fees, vat=cost.vat, created_at=now,
    )
    state.bonuses[made.id] = made
    return made


def pay(state: ProlificState, bonus_id: str, now: float) -> BulkBonus:
    """Pay a bulk bonus. Like Prolific's, this is not idempotent: each call pays the participants again."""
    found = state.bonuses.get(bonus_id)
    if found is None:
        raise not_found("bulk bonus payment", bonus_id)
    if found.amount + found.fees + found.vat > available(state, now):
        raise ProlificError(
            402, INSUFFICIENT_FUNDS, "Insufficient funds", "Top up your workspace to pay these bonuses."
        )
    found.times_paid += 1
    for ident, amount in found.rows:
        for sub in state.submissions.values():
            if sub.study_id == found.study and ident in (sub.id, sub.participant_id):
                sub.bonus_payments.append(amount)
    return found


def create_group(state: ProlificState, body: dict[str, Any]) -> Group:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("name", "This field is required.")
    made = Group(id=state.new_id(), name=name, participant_ids=_ids(body.get("participant_ids") or []))
    state.groups[made.id] = made
    return made


def group(state: ProlificState, group_id: str) -> Group:
    found = state.groups.get(group_id)
    if found is None:
        raise not_found("participant group", group_id)
    return found


def _ids(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(i, str) and i for i in raw):
        raise invalid("participant_ids", "A list of participant ids is required.")
    return list(raw)


def add(state: ProlificState, group_id: str, body: dict[str, Any]) -> Group:
    found = group(state, group_id)
    for ident in _ids(body.get("participant_ids")):
        if ident not in found.participant_ids:
            found.participant_ids.append(ident)
    return found


def remove(state: ProlificState, group_id: str, body: dict[str, Any]) -> Group:
    found = group(state, group_id)
    gone = set(_ids(body.get("participant_ids")))
    found.participant_ids = [i for i in found.participant_ids if i not in gone]
    return found


def members(found: Group) -> list[dict[str, Any]]:
    return [{"participant_id": ident} for ident in found.participant_ids]


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body
