"""What the dashboard shows, as JSON: a run's live snapshot and a conversation's transcript.

Counts come from the database (true after a restart, and across instances); what only this process
knows (sockets attached, workers in the waiting room right now) comes from the run when it is served here.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from server.hits.forms import HtmlForm, agreement_of, html_form_of, task_of_row
from server.registry import Runs
from server.states import AgentState, ConversationState, HitCount, describe_states
from server.store import Store, TaskRun
from server.store.hits import HitStore
from server.store.review import ReviewStore

S = AgentState
H = HitCount
RECENT_CONVERSATIONS = 50
TRANSCRIPT_LIMIT = 5000
FORM_ANSWERS_SHOWN = 200
C = ConversationState
ENDED = tuple(state for state in ConversationState if state != C.RUNNING)


async def run_list(*, store: Store, runs: Runs) -> list[dict[str, Any]]:
    return [
        {
            "id": row.id, "task_module": row.task_module, "status": row.status, "created_at": row.created_at,
            "served": runs.get(row.id) is not None,
            "title": run.task.title if (run := runs.get(row.id)) is not None else row.task_module,
        }
        for row in await store.runs()
    ]


async def run_snapshot(*, store: Store, runs: Runs, run_id: str) -> dict[str, Any] | None:
    row = await store.get_run(run_id)
    if row is None:
        return None
    reviews = ReviewStore(store)
    agents = {state: n for (_, state), n in (await reviews.agent_states(run_id)).items()}
    convs = {state: n for (_, state), n in (await reviews.conversation_states(run_id)).items()}
    hits = {status: n for (_, status), n in (await reviews.hit_states(run_id)).items()}
    run = runs.get(run_id)
    target = run.task.caps.target_conversations if run is not None else None
    budget = (await reviews.budgets(run_id)).get(run_id)
    recent = await reviews.conversation_page(run_id, limit=RECENT_CONVERSATIONS)
    return {
        "at": time.time(),
        "run": {
            "id": row.id, "status": row.status, "task_module": row.task_module, "created_at": row.created_at,
            "served": run is not None, "title": run.task.title if run is not None else row.task_module,
        },
        "workers": {
            "onboarding": agents.get(S.ONBOARDING, 0) + agents.get(S.JOINED, 0),
            "waiting": agents.get(S.WAITING, 0),
            "in_conversation": agents.get(S.IN_TASK, 0),
            "connected": sum(1 for h in run.humans.values() if h.channel.attached) if run is not None else 0,
        },
        "assignments": {
            "submitted": agents.get(S.SUBMITTED, 0),
            "approved": agents.get(S.APPROVED, 0),
            "rejected": agents.get(S.REJECTED, 0),
        },
        "agents": agents,
        "messages": await store.count_messages(run_id),
        "conversations": {
            "live": convs.get(C.RUNNING, 0),
            "finished": sum(convs.get(s, 0) for s in ENDED),
            "completed": convs.get(C.COMPLETED, 0),
            "target": target,
            "by_state": convs,
        },
        "hits": {  # counted as `hit_count` says (server/states.py), as /metrics counts them
            "published": budget is not None,
            "open": hits.get(H.OPEN, 0) + hits.get(H.CREATING, 0),
            "taken": hits.get(H.TAKEN, 0),
            "submitted": hits.get(H.SUBMITTED, 0),
            "approved": hits.get(H.APPROVED, 0),
            "rejected": hits.get(H.REJECTED, 0),
            "by_status": {str(count): n for count, n in hits.items()},
        },
        "spend": await _money(store, run_id, budget or 0),
        "flagged": len({a.agent_id for a in await reviews.actions_for_run(run_id, action="flag")}),
        "recent": [
            {
                "id": conv.id, "index": conv.index, "state": conv.state, "created_at": conv.created_at,
                "ended_at": conv.ended_at, "messages": count, "roles": sorted(conv.participants),
            }
            for conv, count in recent
        ],
    }


async def _money(store: Store, run_id: str, budget_cents: int) -> dict[str, int]:
    """Spent (work done, bonuses and compensations paid) apart from reserved (held for open HITs and what is
    being paid), as `parley status` shows them; their sum is what the budget counts."""
    money = await HitStore(store).money(run_id)
    return {"spent_cents": money.spent_cents, "reserved_cents": money.reserved_cents,
            "total_cents": money.total_cents, "budget_cents": budget_cents}


async def transcript(*, store: Store, conversation_id: str) -> dict[str, Any] | None:
    conv = await store.get_conversation(conversation_id)
    if conv is None:
        return None
    reviews = ReviewStore(store)
    agents = await reviews.agents_by_id(conv.participants.values())
    actions = await reviews.actions_for(agents)
    messages = await reviews.messages_after(conversation_id, after=None, limit=TRANSCRIPT_LIMIT)
    participants = []
    for role, who in conv.participants.items():
        agent = agents.get(who)
        participants.append({
            "role": role,
            "kind": "human" if agent is not None else "bot",
            "agent_id": agent.id if agent else None,
            "worker_id": agent.worker_id if agent else None,
            "assignment_id": agent.assignment_id if agent else None,
            "state": agent.state if agent else None,
            "reviews": [a.model_dump() for a in actions if agent is not None and a.agent_id == agent.id],
        })
    return {
        "conversation": {
            "id": conv.id, "run_id": conv.run_id, "index": conv.index, "kind": conv.kind, "state": conv.state,
            "context": conv.context, "end_reason": conv.end_reason, "created_at": conv.created_at,
            "ended_at": conv.ended_at,
        },
        "participants": participants,
        "messages": [
            {
                "id": m.id, "sender": m.sender, "kind": m.kind, "text": m.text, "annotations": m.data,
                "created_at": m.created_at, "human": m.agent_id is not None,
            }
            for m in messages
        ],
        "truncated": len(messages) >= TRANSCRIPT_LIMIT,
        "world_data": (await reviews.world_data([conv.id])).get(conv.id),
        "states": describe_states(),
    }


async def form_answers(*, store: Store, runs: Runs, run_id: str) -> dict[str, Any] | None:
    """A form run's answers (HTMLQuestion, one HIT per item): counts, the task's agreement figures as
    `parley agreement` prints them, and the latest answers. Empty counts for a run with no answers."""
    row = await store.get_run(run_id)
    if row is None:
        return None
    answers = await HitStore(store).form_answers(run_id)
    form = _form_of(row, runs)
    latest = sorted(answers, key=lambda a: (a.submitted_at, a.assignment_id), reverse=True)[:FORM_ANSWERS_SHOWN]
    return {
        "form_task": form is not None,
        "answers": len(answers),
        "items": len({a.item_id for a in answers}),
        "workers": len({a.worker_id for a in answers}),
        "by_status": dict(Counter(a.assignment_status for a in answers)),
        "unreadable": sum(1 for a in answers if a.error),
        "agreement": agreement_of(form, answers) if form is not None else [],
        "latest": [
            {
                "item_id": a.item_id, "worker_id": a.worker_id, "assignment_id": a.assignment_id, "hit_id": a.hit_id,
                "answers": a.answers, "status": a.assignment_status, "error": a.error, "submitted_at": a.submitted_at,
            }
            for a in latest
        ],
    }


def _form_of(row: TaskRun, runs: Runs) -> HtmlForm | None:
    run = runs.get(row.id)  # a form run is published by the HIT manager, not served: usually loaded from its row
    task = run.task if run is not None else task_of_row(row)
    return html_form_of(task) if task is not None else None
