"""The worker site's JSON: HITs and assignments as the page shows them (pure functions of the state)."""

from __future__ import annotations

from typing import Any

from server.sandbox.lifecycle import hit_counts
from server.sandbox.model import Assignment, AssignmentStatus, SandboxState
from server.sandbox.money import format_cents
from server.sandbox.question import parse_question
from server.sandbox.worker_actions import (
    WorkerHit,
    preview_url,
    visible_hits,
    work_url,
    worker_assignments,
)


def _frame(state: SandboxState, hit_id: str) -> dict[str, Any]:
    """How the worker site frames the HIT's page: its height, and sandboxed when it is an HTMLQuestion
    (anyone's HTML, given an opaque origin; an ExternalQuestion is a site of its own)."""
    question = parse_question(state.hits[hit_id].question)
    return {"frame_height": question.frame_height, "html_question": question.html is not None}


def hit_json(state: SandboxState, view: WorkerHit, now: float, sandbox_base: str) -> dict[str, Any]:
    hit = view.hit
    hit_type = state.hit_types[hit.hit_type_id]
    return {
        "hit_id": hit.hit_id,
        "title": hit_type.title,
        "description": hit_type.description,
        "keywords": hit_type.keywords,
        "reward": format_cents(hit_type.reward_cents),
        "assignments_available": hit_counts(state, hit, now).available,
        "expiration": hit.expiration,
        "assignment_duration_seconds": hit_type.assignment_duration,
        **_frame(state, hit.hit_id),
        "preview_url": preview_url(state, hit, sandbox_base) if view.can_preview else None,
        "can_accept": view.refusal is None,
        "refusal": None if view.refusal is None else view.refusal.body()["error"],
    }


def group_json(state: SandboxState, members: list[WorkerHit], now: float, sandbox_base: str) -> dict[str, Any]:
    """A HIT group as MTurk lists it: the HITs of one HIT type, with how many are available. Previewed and
    named by its oldest HIT this worker may accept (else its oldest)."""
    members = sorted(members, key=lambda view: view.hit.creation_time)
    acceptable = [view for view in members if view.refusal is None]
    shown = (acceptable or members)[0]
    return {
        **hit_json(state, shown, now, sandbox_base),
        "hit_type_id": shown.hit.hit_type_id,
        "hits_available": len(members),
    }


def hits_json(state: SandboxState, worker_id: str, now: float, sandbox_base: str) -> dict[str, Any]:
    views = visible_hits(state, worker_id, now)
    groups: dict[str, list[WorkerHit]] = {}
    for view in views:
        groups.setdefault(view.hit.hit_type_id, []).append(view)
    return {
        "worker_id": worker_id,
        "hits": [hit_json(state, view, now, sandbox_base) for view in views],
        "groups": [group_json(state, members, now, sandbox_base) for members in groups.values()],
    }


def assignment_json(state: SandboxState, assignment: Assignment, sandbox_base: str) -> dict[str, Any]:
    hit = state.hits[assignment.hit_id]
    working = assignment.status is AssignmentStatus.ACCEPTED
    return {
        "assignment_id": assignment.assignment_id,
        "hit_id": assignment.hit_id,
        "title": state.hit_types[hit.hit_type_id].title,
        "status": assignment.status.value,
        "in_progress": working,
        "accept_time": assignment.accept_time,
        "deadline": assignment.deadline,
        "submit_time": assignment.submit_time,
        "approval_time": assignment.approval_time,
        "rejection_time": assignment.rejection_time,
        "requester_feedback": assignment.requester_feedback,
        **_frame(state, hit.hit_id),
        "work_url": work_url(state, assignment, sandbox_base) if working else None,
    }


def assignments_json(state: SandboxState, worker_id: str, sandbox_base: str) -> dict[str, Any]:
    assignments = worker_assignments(state, worker_id)
    return {
        "worker_id": worker_id,
        "assignments": [assignment_json(state, assignment, sandbox_base) for assignment in reversed(assignments)],
    }


def messages_json(state: SandboxState, worker_id: str) -> dict[str, Any]:
    messages = [note for note in state.notifications if note.worker_id == worker_id]
    return {
        "worker_id": worker_id,
        "messages": [
            {"subject": note.subject, "message_text": note.message_text, "time": note.time}
            for note in reversed(messages)
        ],
    }
