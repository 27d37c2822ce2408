"""What a worker does: see HITs, accept, return, submit. Refusals are ``WorkerRefusal`` with a stable code."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from server.sandbox.errors import WorkerRefusal
from server.sandbox.lifecycle import hit_counts, is_expired
from server.sandbox.model import HIT, Assignment, AssignmentStatus, SandboxState, Worker
from server.sandbox.quals import Access, access, type_name
from server.sandbox.question import PREVIEW_ASSIGNMENT_ID, answer_xml, parse_question, with_params
from server.sandbox.registry import new_id

WORKER_ID = re.compile(r"^A[A-Z0-9]{1,63}$")
_DONE = frozenset({AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED, AssignmentStatus.REJECTED})


def check_worker_id(worker_id: str) -> str:
    if not WORKER_ID.match(worker_id):
        raise WorkerRefusal(
            "invalid_worker_id",
            "A worker id is the letter A followed by capital letters and digits (e.g. ATESTWORKER1), "
            "at most 64 characters.",
            400,
        )
    return worker_id


def _worker(state: SandboxState, worker_id: str) -> Worker:
    return state.workers.get(worker_id) or Worker(worker_id=check_worker_id(worker_id))


def find_hit(state: SandboxState, hit_id: str) -> HIT:
    hit = state.hits.get(hit_id)
    if hit is None or hit.disposed:
        raise WorkerRefusal("unknown_hit", f"There is no HIT {hit_id}.", 404)
    return hit


def find_assignment(state: SandboxState, assignment_id: str) -> Assignment:
    assignment = state.assignments.get(assignment_id)
    if assignment is None:
        raise WorkerRefusal("unknown_assignment", f"There is no assignment {assignment_id}.", 404)
    return assignment


def _access(state: SandboxState, worker_id: str, hit: HIT) -> tuple[Access, str | None]:
    requirements = state.hit_types[hit.hit_type_id].qualification_requirements
    return access(state, _worker(state, worker_id), requirements)


def accept_refusal(state: SandboxState, worker_id: str, hit: HIT, now: float) -> WorkerRefusal | None:
    """Why this worker may not accept this HIT now, or None."""
    if worker_id in state.blocks:
        return WorkerRefusal("blocked", "The requester has blocked you from working on their HITs.", 403)
    if is_expired(hit, now):
        return WorkerRefusal("hit_expired", "This HIT has expired and can no longer be accepted.", 410)
    level, failed = _access(state, worker_id, hit)
    if level < Access.ACCEPT:
        name = type_name(state, failed or "")
        return WorkerRefusal("not_qualified", f"You do not meet the qualification requirement '{name}'.", 403)
    mine = [state.assignments[a] for a in hit.assignment_ids if state.assignments[a].worker_id == worker_id]
    if any(a.status is AssignmentStatus.ACCEPTED for a in mine):
        return WorkerRefusal("already_working", "You are already working on this HIT.", 409)
    if any(a.status in _DONE for a in mine):
        return WorkerRefusal("already_submitted", "You have already submitted work for this HIT.", 409)
    if hit_counts(state, hit, now).available == 0:
        return WorkerRefusal("no_assignment_left", "All assignments of this HIT are taken.", 409)
    return None


def accept(state: SandboxState, worker_id: str, hit_id: str, now: float) -> Assignment:
    check_worker_id(worker_id)
    hit = find_hit(state, hit_id)
    refusal = accept_refusal(state, worker_id, hit, now)
    if refusal is not None:
        raise refusal
    duration = state.hit_types[hit.hit_type_id].assignment_duration
    assignment = Assignment(
        assignment_id=new_id(),
        hit_id=hit.hit_id,
        worker_id=worker_id,
        accept_time=now,
        deadline=now + duration,
    )
    state.worker(worker_id)
    state.assignments[assignment.assignment_id] = assignment
    hit.assignment_ids.append(assignment.assignment_id)
    return assignment


_GONE = frozenset({"no_assignment_left", "already_working", "already_submitted", "hit_expired"})


def accept_from_group(state: SandboxState, worker_id: str, hit_type_id: str, now: float) -> Assignment:
    """MTurk's "Accept & Work" on a HIT group: the oldest HIT of the type this worker may accept now, so a
    list a moment old still works while any HIT of the group is free."""
    check_worker_id(worker_id)
    hits = sorted(
        (hit for hit in state.hits.values() if hit.hit_type_id == hit_type_id and not hit.disposed),
        key=lambda hit: hit.creation_time,
    )
    refusals = []
    for hit in hits:
        refusal = accept_refusal(state, worker_id, hit, now)
        if refusal is None:
            return accept(state, worker_id, hit.hit_id, now)
        refusals.append(refusal)
    for refusal in refusals:
        if refusal.code not in _GONE:
            raise refusal  # blocked or not qualified: say so rather than "none left"
    raise WorkerRefusal(
        "no_hit_left", "No HIT of this group is left for you: other workers took them. The list is up to date now.",
        409,
    )


def _in_progress(assignment: Assignment) -> None:
    if assignment.status is AssignmentStatus.ACCEPTED:
        return
    if assignment.status is AssignmentStatus.ABANDONED:
        raise WorkerRefusal("assignment_expired", "The time allotted for this assignment ran out.", 410)
    if assignment.status in _DONE:
        raise WorkerRefusal("already_submitted", "This assignment has already been submitted.", 409)
    raise WorkerRefusal("not_in_progress", f"This assignment is {assignment.status.value.lower()}.", 409)


def return_assignment(state: SandboxState, assignment_id: str, now: float) -> Assignment:
    assignment = find_assignment(state, assignment_id)
    _in_progress(assignment)
    assignment.move_to(AssignmentStatus.RETURNED)
    assignment.ended_time = now
    return assignment


def submit(
    state: SandboxState, assignment_id: str, answers: Iterable[tuple[str, str]], now: float, submit_key: str | None
) -> Assignment:
    """Record the answers; `submit_key` must be the assignment's (None: a trusted in-process caller)."""
    assignment = find_assignment(state, assignment_id)
    if submit_key is not None and not hmac.compare_digest(assignment.submit_key.encode(), submit_key.encode()):
        raise WorkerRefusal(
            "not_your_assignment",
            f"Assignment {assignment_id} can only be submitted by the page it was given to: post the form to "
            "that page's turkSubmitTo address followed by /mturk/externalSubmit.",
            403,
        )
    _in_progress(assignment)
    delay = state.hit_types[state.hits[assignment.hit_id].hit_type_id].auto_approval_delay
    assignment.move_to(AssignmentStatus.SUBMITTED)
    assignment.answer = answer_xml(list(answers))
    assignment.submit_time = now
    assignment.auto_approval_time = now + delay
    return assignment


def task_url(state: SandboxState, hit: HIT, params: dict[str, str], sandbox_base: str) -> str:
    """Where the HIT's page is: the ExternalURL, or the sandbox's page for an HTMLQuestion."""
    question = parse_question(hit.question)
    if question.external_url is not None:
        return with_params(question.external_url, params)
    return f"{sandbox_base}/worker/html/{hit.hit_id}?{urlencode(params)}"


def preview_url(state: SandboxState, hit: HIT, sandbox_base: str) -> str:
    return task_url(state, hit, {"assignmentId": PREVIEW_ASSIGNMENT_ID, "hitId": hit.hit_id}, sandbox_base)


def work_url(state: SandboxState, assignment: Assignment, sandbox_base: str) -> str:
    """MTurk's four parameters: turkSubmitTo is where the page posts ``/mturk/externalSubmit``; it carries
    the assignment's submit key, so only the page given the assignment can submit it."""
    params = {
        "assignmentId": assignment.assignment_id,
        "hitId": assignment.hit_id,
        "workerId": assignment.worker_id,
        "turkSubmitTo": f"{sandbox_base}/submit/{assignment.submit_key}",
    }
    return task_url(state, state.hits[assignment.hit_id], params, sandbox_base)


@dataclass(frozen=True)
class WorkerHit:
    """A HIT as one worker sees it in the list."""

    hit: HIT
    can_preview: bool
    refusal: WorkerRefusal | None


def visible_hits(state: SandboxState, worker_id: str, now: float) -> list[WorkerHit]:
    """Open HITs this worker may discover; hidden ones (DiscoverPreviewAndAccept) are left out."""
    check_worker_id(worker_id)
    seen = []
    for hit in state.hits.values():
        if hit.disposed or hit_counts(state, hit, now).available == 0:
            continue
        level, _ = _access(state, worker_id, hit)
        if level < Access.DISCOVER:
            continue
        seen.append(WorkerHit(hit, level >= Access.PREVIEW, accept_refusal(state, worker_id, hit, now)))
    return seen


def worker_assignments(state: SandboxState, worker_id: str) -> list[Assignment]:
    check_worker_id(worker_id)
    return [assignment for assignment in state.assignments.values() if assignment.worker_id == worker_id]
