"""Submissions: a participant takes a place, hands in with a completion code, returns or times out; the
researcher approves or rejects (with one of Prolific's rejection categories)."""

from __future__ import annotations

from typing import Any

from server.prolific_sandbox.errors import ParticipantRefusal, bad_request, invalid, not_found
from server.prolific_sandbox.model import ProlificState, StudyStatus, Submission, SubmissionStatus
from server.prolific_sandbox.studies import study

S = SubmissionStatus
REJECTION_CATEGORIES = frozenset({
    "TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK", "LOW_EFFORT",
    "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_DEVICE", "OTHER",
})
MIN_REJECTION_MESSAGE = 100  # Prolific asks for at least 100 characters, so the participant learns why


def submission(state: ProlificState, submission_id: str) -> Submission:
    found = state.submissions.get(submission_id)
    if found is None:
        raise not_found("submission", submission_id)
    return found


def advance(state: ProlificState, now: float) -> bool:
    """Time out every active submission past its study's maximum allowed time; True if any moved."""
    moved = False
    for sub in state.submissions.values():
        limit = state.studies[sub.study_id].maximum_allowed_time * 60
        if sub.status == S.ACTIVE and now - sub.started_at > limit:
            sub.status, moved = S.TIMED_OUT, True
    return moved


def of_study(state: ProlificState, study_id: str) -> list[Submission]:
    study(state, study_id)
    return sorted((s for s in state.submissions.values() if s.study_id == study_id), key=lambda s: s.started_at)


def blocked(state: ProlificState, study_id: str, participant_id: str) -> bool:
    for entry in state.studies[study_id].filters:
        if entry.get("filter_id") == "participant_group_blocklist":
            for group_id in entry.get("selected_values") or []:
                group = state.groups.get(str(group_id))
                if group is not None and participant_id in group.participant_ids:
                    return True
    return False


def start(state: ProlificState, study_id: str, participant_id: str, now: float) -> Submission:
    """Take a place (the participant site's "Start now"): one submission per participant per study."""
    found = study(state, study_id)
    if not participant_id.strip():
        raise ParticipantRefusal("Sign in with a participant id first.")
    for sub in state.submissions.values():
        if sub.study_id == study_id and sub.participant_id == participant_id:
            if sub.status == S.ACTIVE:
                return sub  # opening the study again resumes the same session
            raise ParticipantRefusal(f"You have already taken part in this study ({sub.status.value}).")
    if found.status != StudyStatus.ACTIVE:
        raise ParticipantRefusal("This study is not taking participants now.")
    if blocked(state, study_id, participant_id):
        raise ParticipantRefusal("You are not eligible for this study.")
    if state.taken(study_id) >= found.total_available_places:
        raise ParticipantRefusal("All places in this study are taken.")
    made = Submission(id=state.new_id(), study_id=study_id, participant_id=participant_id, started_at=now)
    state.submissions[made.id] = made
    return made


def complete(state: ProlificState, participant_id: str, code: str, now: float) -> Submission:
    """The completion URL (`/submissions/complete?cc=CODE`): hand in the participant's active submission of
    the study whose completion codes include CODE."""
    for sub in state.submissions.values():
        if sub.participant_id != participant_id or sub.status != S.ACTIVE:
            continue
        if code in {c.code for c in state.studies[sub.study_id].completion_codes}:
            sub.status, sub.completed_at, sub.study_code = S.AWAITING_REVIEW, now, code
            if any(a.get("action") == "AUTOMATICALLY_APPROVE" for a in _actions(state, sub, code)):
                sub.status = S.APPROVED
            return sub
    raise ParticipantRefusal("No study you are taking part in has this completion code.")


def _actions(state: ProlificState, sub: Submission, code: str) -> list[dict[str, Any]]:
    for entry in state.studies[sub.study_id].completion_codes:
        if entry.code == code:
            return entry.actions
    return []


def give_back(state: ProlificState, submission_id: str) -> Submission:
    sub = submission(state, submission_id)
    if sub.status != S.ACTIVE:
        raise ParticipantRefusal(f"Only an active submission can be returned; this one is {sub.status.value}.")
    sub.status = S.RETURNED
    return sub


def transition(state: ProlificState, submission_id: str, body: dict[str, Any], now: float) -> Submission:
    """APPROVE or REJECT a submission awaiting review. Idempotent, as Prolific's: repeating the move that
    already happened changes nothing."""
    sub = submission(state, submission_id)
    action = body.get("action")
    target = {"APPROVE": S.APPROVED, "REJECT": S.REJECTED}.get(str(action))
    if target is None:
        raise invalid("action", "Choose APPROVE or REJECT.")
    if sub.status == target:
        return sub
    if target == S.REJECTED:
        _check_rejection(body)
    if sub.status != S.AWAITING_REVIEW:
        raise bad_request(f"A submission that is {sub.status.value} cannot be moved to {target.value}.")
    sub.status = target
    if target == S.REJECTED:
        sub.message, sub.rejection_category = str(body["message"]), str(body["rejection_category"])
    return sub


def _check_rejection(body: dict[str, Any]) -> None:
    message = body.get("message")
    if not isinstance(message, str) or len(message.strip()) < MIN_REJECTION_MESSAGE:
        raise invalid("message", f"Ensure this field has at least {MIN_REJECTION_MESSAGE} characters.")
    if body.get("rejection_category") not in REJECTION_CATEGORIES:
        raise invalid("rejection_category", f"Choose one of {sorted(REJECTION_CATEGORIES)}.")

