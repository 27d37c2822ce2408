"""Export a run's data: `jsonl` (Parley's records), `parlai` (ParlAI's Conversations format) or `csv`.

One record per conversation (in csv, one row per message, the conversation's fields repeated): its
messages with speakers, timings and per-message annotations, the world's saved data, and review status.
A run published as HTMLQuestion forms (server/hits/forms.py) has form answers instead: in jsonl one line per
item and worker (`"type": "form_answer"`), in csv one row each with a column per answer field (when the run
has no conversations); the parlai format holds dialogues only and leaves them out.
Worker ids are hashed (HMAC-SHA256 with a per-database salt, so one worker has one stable pseudonym across
exports) unless `raw_worker_ids` is asked for.

Export streams: conversations and messages are read in pages by keyset, and each record is written as it
is read, so memory stays bounded by a page however large the run or a single conversation is.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from server.states import AgentState, AssignmentStatus
from server.store import AgentRow, Conversation, Store
from server.store.hits import FormAnswer, HitStore
from server.store.review import MessageLine, ReviewStore

Format = Literal["jsonl", "parlai", "csv"]
FORMATS: tuple[Format, ...] = ("jsonl", "parlai", "csv")
MEDIA_TYPES: dict[Format, str] = {
    "jsonl": "application/x-ndjson", "parlai": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
}
EXTENSIONS: dict[Format, str] = {"jsonl": "jsonl", "parlai": "parlai.jsonl", "csv": "csv"}
CONVERSATION_PAGE = 100
MESSAGE_PAGE = 500
CSV_COLUMNS = [
    "run_id", "conversation_id", "conversation_index", "conversation_state", "review_status", "message_index",
    "message_id", "role", "speaker", "kind", "text", "annotations", "created_at", "offset_s", "context",
    "world_data",
]


@dataclass(frozen=True)
class Speakers:
    """Who is who in one conversation: role -> speaker id (a worker pseudonym, a raw worker id, or bot:role)."""

    by_role: dict[str, str]
    by_agent: dict[str, str]
    humans: list[dict[str, Any]]

    def of(self, message: MessageLine) -> str:
        if message.agent_id:
            return self.by_agent.get(message.agent_id, message.agent_id)
        return self.by_role.get(message.sender, message.sender)


def pseudonym(worker_id: str, salt: str) -> str:
    return "w_" + hmac.new(salt.encode(), worker_id.encode(), hashlib.sha256).hexdigest()[:20]


async def export_run(
    store: Store, run_id: str, fmt: Format, *, raw_worker_ids: bool = False, salt: str | None = None,
    conversation_page: int = CONVERSATION_PAGE, message_page: int = MESSAGE_PAGE,
) -> AsyncIterator[str]:
    """The run's data as text chunks, in order; write or send each as it comes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    reviews = ReviewStore(store)
    salt = salt if salt is not None else await reviews.export_salt()
    write_record = {"jsonl": _jsonl_record, "parlai": _parlai_record, "csv": _csv_record}[fmt]
    after: tuple[float, str] | None = None
    answers = await HitStore(store).form_answers(run_id)
    if fmt == "csv" and answers and not await reviews.conversations_after(run_id, after=None, limit=1):
        for chunk in _form_csv(answers, salt, raw_worker_ids):
            yield chunk
        return
    if fmt == "csv":
        yield _csv_line(CSV_COLUMNS)
    while batch := await reviews.conversations_after(run_id, after=after, limit=conversation_page):
        after = (batch[-1].created_at, batch[-1].id)
        agents = await reviews.agents_by_id(a for c in batch for a in c.participants.values())
        world = await reviews.world_data(c.id for c in batch)
        for conv in batch:
            speakers = _speakers(conv, agents, salt, raw_worker_ids)
            pages = _message_pages(reviews, conv.id, message_page)
            async for chunk in write_record(conv, speakers, world.get(conv.id), pages):
                yield chunk
    if fmt == "jsonl":
        for answer in answers:
            yield _dumps(form_record(answer, salt, raw_worker_ids)) + "\n"


def parlai_metadata(run_id: str, task_module: str, *, speakers: list[str], created_at: str) -> dict[str, Any]:
    """ParlAI's `<file>.metadata` for a `parlai` export (its Conversations class reads it next to the data)."""
    return {
        "date": created_at, "opt": {"parley_run": run_id, "task": task_module}, "self_chat": False,
        "speakers": speakers, "version": "0.1",
    }


# ---- form answers -------------------------------------------------------------------------------

FORM_CSV_COLUMNS = ["run_id", "item_id", "worker_id", "assignment_id", "hit_id", "review_status", "submitted_at",
                    "error"]
FORM_REVIEW: dict[str, str] = {AssignmentStatus.APPROVED: "approved", AssignmentStatus.REJECTED: "rejected"}


def form_record(answer: FormAnswer, salt: str, raw: bool) -> dict[str, Any]:
    """One item's answers by one worker, as exported."""
    return {
        "type": "form_answer", "run_id": answer.run_id, "item_id": answer.item_id,
        "worker_id": answer.worker_id if raw else pseudonym(answer.worker_id, salt),
        "assignment_id": answer.assignment_id, "hit_id": answer.hit_id, "answers": answer.answers,
        "error": answer.error or None, "review_status": FORM_REVIEW.get(answer.assignment_status, "pending"),
        "submitted_at": answer.submitted_at,
    }


def _form_csv(answers: list[FormAnswer], salt: str, raw: bool) -> list[str]:
    fields = sorted({name for a in answers for name in a.answers})
    lines = [_csv_line([*FORM_CSV_COLUMNS, *(f"answer.{name}" for name in fields)])]
    for answer in answers:
        record = form_record(answer, salt, raw)
        values = [record[c] if c != "error" else answer.error for c in FORM_CSV_COLUMNS]
        lines.append(_csv_line([*values, *(_csv_value(answer.answers.get(name)) for name in fields)]))
    return lines


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else _dumps(value)


# ---- shared pieces ------------------------------------------------------------------------------


async def _message_pages(reviews: ReviewStore, conversation_id: str, size: int) -> AsyncIterator[list[MessageLine]]:
    after: tuple[float, str] | None = None
    while page := await reviews.messages_after(conversation_id, after=after, limit=size):
        after = (page[-1].created_at, page[-1].id)
        yield page


def _speakers(conv: Conversation, agents: dict[str, AgentRow], salt: str, raw: bool) -> Speakers:
    by_role: dict[str, str] = {}
    by_agent: dict[str, str] = {}
    humans: list[dict[str, Any]] = []
    for role, who in conv.participants.items():
        agent = agents.get(who)
        if agent is None:
            by_role[role] = who if who.startswith("bot:") else f"bot:{role}"
            continue
        speaker = agent.worker_id if raw else pseudonym(agent.worker_id, salt)
        by_role[role] = by_agent[agent.id] = speaker
        humans.append({"role": role, "speaker": speaker, "state": agent.state, "review": _review_of(agent.state)})
    return Speakers(by_role, by_agent, humans)


def _review_of(state: str) -> str:
    return {AgentState.APPROVED: "approved", AgentState.REJECTED: "rejected"}.get(AgentState(state), "pending")


def _review_status(speakers: Speakers) -> str:
    reviews = {h["review"] for h in speakers.humans}
    if "rejected" in reviews:
        return "rejected"
    if reviews == {"approved"}:
        return "approved"
    return "pending" if speakers.humans else "none"


def _header(conv: Conversation, speakers: Speakers, world: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "run_id": conv.run_id, "conversation_id": conv.id, "index": conv.index, "state": conv.state,
        "end_reason": conv.end_reason, "context": conv.context, "started_at": conv.created_at,
        "ended_at": conv.ended_at,
        "duration_s": round(conv.ended_at - conv.created_at, 3) if conv.ended_at is not None else None,
        "speakers": speakers.by_role, "workers": speakers.humans, "review_status": _review_status(speakers),
        "world_data": world,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# ---- formats ------------------------------------------------------------------------------------

Pages = AsyncIterator[list[MessageLine]]


async def _jsonl_record(
    conv: Conversation, speakers: Speakers, world: dict[str, Any] | None, pages: Pages
) -> AsyncIterator[str]:
    """`{...conversation fields, "messages": [...]}` on one line, written a page of messages at a time."""
    yield _dumps(_header(conv, speakers, world))[:-1] + ',"messages":['
    first = True
    async for page in pages:
        yield ("" if first else ",") + ",".join(_dumps(_message(m, conv, speakers)) for m in page)
        first = False
    yield "]}\n"


def _message(m: MessageLine, conv: Conversation, speakers: Speakers) -> dict[str, Any]:
    return {
        "id": m.id, "role": m.sender, "speaker": speakers.of(m), "kind": m.kind, "text": m.text,
        "annotations": m.data, "created_at": m.created_at, "offset_s": round(m.created_at - conv.created_at, 3),
    }


async def _parlai_record(
    conv: Conversation, speakers: Speakers, world: dict[str, Any] | None, pages: Pages
) -> AsyncIterator[str]:
    """ParlAI's Conversations format: `{"dialog": [[turn, turn], ...], "context": [...], ...}` per line.

    Turns are `{"id": role, "text": ...}` plus Parley's fields; consecutive turns are paired as ParlAI's
    act pairs (its reader flattens them). The conversation's context is a `context` turn.
    """
    header = {k: v for k, v in _header(conv, speakers, world).items() if k != "context"}
    context = []
    if conv.context is not None:
        context.append({"id": "context", "text": _context_text(conv.context), "data": conv.context})
    yield _dumps({"context": context, **header})[:-1] + ',"dialog":['
    pending: dict[str, Any] | None = None
    pairs = 0
    async for page in pages:
        chunk: list[str] = []
        for m in page:
            turn = {"id": m.sender, "text": m.text, "speaker": speakers.of(m), "kind": m.kind,
                    "annotations": m.data, "created_at": m.created_at, "episode_done": False}
            if pending is None:
                pending = turn
                continue
            chunk.append(_dumps([pending, turn]))
            pending = None
        if chunk:
            yield ("," if pairs else "") + ",".join(chunk)
            pairs += len(chunk)
    if pending is not None:
        yield ("," if pairs else "") + _dumps([pending])
    yield "]}\n"


def _context_text(context: Any) -> str:
    return context if isinstance(context, str) else _dumps(context)


async def _csv_record(
    conv: Conversation, speakers: Speakers, world: dict[str, Any] | None, pages: Pages
) -> AsyncIterator[str]:
    review = _review_status(speakers)
    fixed = [conv.run_id, conv.id, conv.index, conv.state, review]
    context = "" if conv.context is None else _dumps(conv.context)
    world_json = "" if world is None else _dumps(world)
    index = 0
    async for page in pages:
        lines = []
        for m in page:
            lines.append(_csv_line([
                *fixed, index, m.id, m.sender, speakers.of(m), m.kind, m.text, _dumps(m.data), m.created_at,
                round(m.created_at - conv.created_at, 3), context, world_json,
            ]))
            index += 1
        yield "".join(lines)
    if index == 0:  # a conversation without messages still appears, once
        yield _csv_line([*fixed, "", "", "", "", "", "", "", "", "", context, world_json])


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()
