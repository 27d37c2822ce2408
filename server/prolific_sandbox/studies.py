"""Study operations on the emulator's state: create (as a draft), update places, transition, list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from server.prolific_sandbox.errors import INSUFFICIENT_FUNDS, ProlificError, bad_request, invalid, not_found
from server.prolific_sandbox.model import CompletionCode, ProlificState, Study, StudyStatus
from server.prolific_sandbox.money import available, place_cost

PID = "{{%PROLIFIC_PID%}}"
DEVICES = frozenset({"desktop", "tablet", "mobile"})
CODE_TYPES = frozenset({"COMPLETED", "FAILED_ATTENTION_CHECK", "FOLLOW_UP_STUDY", "GIVE_BONUS", "INCOMPATIBLE_DEVICE",
                        "NO_CONSENT", "OTHER"})
# Which study transitions are allowed from which status (Prolific refuses the others with a 400).
MOVES: dict[str, dict[StudyStatus, StudyStatus]] = {
    "PUBLISH": {StudyStatus.UNPUBLISHED: StudyStatus.ACTIVE},
    "PAUSE": {StudyStatus.ACTIVE: StudyStatus.PAUSED},
    "START": {StudyStatus.PAUSED: StudyStatus.ACTIVE},
    "STOP": {s: StudyStatus.COMPLETED for s in (StudyStatus.ACTIVE, StudyStatus.PAUSED, StudyStatus.AWAITING_REVIEW)},
}


def study(state: ProlificState, study_id: str) -> Study:
    found = state.studies.get(study_id)
    if found is None:
        raise not_found("study", study_id)
    return found


def _int(body: dict[str, Any], name: str, *, minimum: int = 1, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(name, "This field is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "A valid integer is required.")
    if value < minimum:
        raise invalid(name, f"Ensure this value is greater than or equal to {minimum}.")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(name, "This field is required.")
    return value


def _codes(raw: Any) -> list[CompletionCode]:
    if not isinstance(raw, list) or not raw:
        raise invalid("completion_codes", "At least one completion code is required.")
    codes = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str) or not entry["code"]:
            raise invalid("completion_codes", "Each completion code needs a non-empty 'code'.")
        if entry.get("code_type", "COMPLETED") not in CODE_TYPES:
            raise invalid("completion_codes", f"Unknown code_type {entry.get('code_type')!r}.")
        codes.append(CompletionCode.model_validate(entry))
    if len({c.code for c in codes}) != len(codes):
        raise invalid("completion_codes", "Completion codes must be unique within a study.")
    return codes


def _url(body: dict[str, Any]) -> str:
    url = _text(body, "external_study_url")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise invalid("external_study_url", "Enter a valid URL.")
    if body.get("prolific_id_option", "url_parameters") == "url_parameters" and PID not in url:
        raise invalid("external_study_url", f"The study URL must carry {PID} (prolific_id_option url_parameters).")
    return url


def _filters(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or any(
        not isinstance(f, dict) or not isinstance(f.get("filter_id"), str) for f in raw
    ):
        raise invalid("filters", "Each filter needs a 'filter_id'.")
    return list(raw)


def create(state: ProlificState, body: dict[str, Any], now: float) -> Study:
    made = _build(body, state.new_id(), now)
    state.studies[made.id] = made
    return made


def _build(body: dict[str, Any], study_id: str, created: float) -> Study:
    devices = body.get("device_compatibility", ["desktop"])
    if not isinstance(devices, list) or not devices or not set(devices) <= DEVICES:
        raise invalid("device_compatibility", f"Choose among {sorted(DEVICES)}.")
    estimated = _int(body, "estimated_completion_time")
    assert estimated is not None
    maximum = _int(body, "maximum_allowed_time", required=False) or estimated * 3 + 2
    if maximum < estimated:
        raise invalid("maximum_allowed_time", "Must be at least the estimated completion time.")
    return Study(
        id=study_id, name=_text(body, "name"), internal_name=str(body.get("internal_name") or ""),
        description=_text(body, "description"), external_study_url=_url(body),
        prolific_id_option=str(body.get("prolific_id_option", "url_parameters")),
        completion_codes=_codes(body.get("completion_codes")),
        total_available_places=_int(body, "total_available_places") or 0, estimated_completion_time=estimated,
        maximum_allowed_time=maximum, reward=_int(body, "reward") or 0, device_compatibility=list(devices),
        filters=_filters(body.get("filters")), date_created=created,
    )


def update(state: ProlificState, study_id: str, body: dict[str, Any], now: float) -> Study:
    """Before publishing any field may change; after, only more places (Prolific's rule for a live study)."""
    found = study(state, study_id)
    if found.status == StudyStatus.UNPUBLISHED:
        state.studies[study_id] = _build(found.model_dump(mode="json") | body, study_id, found.date_created)
        return state.studies[study_id]
    if set(body) - {"total_available_places", "internal_name"}:
        raise bad_request("A published study only accepts changes to total_available_places and internal_name.")
    places = _int(body, "total_available_places", required=False)
    if places is not None:
        if places < found.total_available_places:
            raise bad_request("The number of places of a published study can only be increased.")
        extra = place_cost(found.reward * (places - found.total_available_places))
        if extra.total > available(state, now):
            raise _funds(extra.total)
        found.total_available_places = places
    if "internal_name" in body:
        found.internal_name = str(body["internal_name"])
    return found


def transition(state: ProlificState, study_id: str, action: Any, now: float) -> Study:
    found = study(state, study_id)
    if action not in MOVES:
        raise invalid("action", f"Choose one of {sorted(MOVES)}.")
    target = MOVES[action].get(found.status)
    if target is None:
        raise bad_request(f"A study that is {found.status.value} cannot be moved by {action}.")
    if action == "PUBLISH":
        cost = place_cost(found.reward * found.total_available_places)
        if cost.total > available(state, now):
            raise _funds(cost.total)
        found.published_at = now
    found.status = target
    return found


def _funds(needed: int) -> ProlificError:
    return ProlificError(
        402, INSUFFICIENT_FUNDS, "Insufficient funds",
        f"Your workspace balance does not cover {needed} (minor units) for these places. Top up and try again.",
    )


def listing(state: ProlificState, status: str | None = None) -> list[Study]:
    studies = sorted(state.studies.values(), key=lambda s: s.date_created)
    return [s for s in studies if status is None or s.status.value == status]
