"""Export: one record per conversation in jsonl / ParlAI / csv, worker ids hashed unless asked, bounded memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from typing import Any

import pytest
from sqlalchemy import insert

from server.export import FORMATS, Format, export_run, pseudonym
from server.states import AgentState
from server.store import AgentRow, Conversation, MessageRow, Store

S = AgentState
SALT = "test-salt"


async def _agent(store: Store, agent_id: str, worker_id: str, final: AgentState) -> None:
    await store.create_agent(AgentRow(
        id=agent_id, run_id="run", worker_id=worker_id, assignment_id=f"A-{agent_id}", state=S.JOINED,
    ))
    for state in (S.WAITING, S.IN_TASK, S.DONE, S.SUBMITTED, final):
        if state != S.SUBMITTED or final != S.SUBMITTED:
            await store.set_state(agent_id, state)


async def _small_run(store: Store) -> None:
    """Conversation 0: two workers and a bot, annotations, saved data, one approved. Conversation 1: empty."""
    await store.ensure_run("run", task_module="tests.support.tasks:chat", options={})
    await _agent(store, "ag-a", "WORKER-A", S.APPROVED)
    await _agent(store, "ag-b", "WORKER-B", S.SUBMITTED)
    participants = {"Speaker 1": "ag-a", "Speaker 2": "ag-b", "Critic": "bot:Critic"}
    await store.create_conversation(Conversation(
        id="c0", run_id="run", index=0, state="completed", context={"topic": "tides"}, participants=participants,
        created_at=1000.0, ended_at=1060.0,
    ))
    said: list[tuple[str | None, str, str, dict[str, Any]]] = [
        ("ag-a", "Speaker 1", "Hello, \"friend\",\nhow are you?", {}),
        ("ag-b", "Speaker 2", "Fine, thanks", {"rating": 5}),
        (None, "Critic", "Nice chat.", {}),
        ("ag-a", "Speaker 1", "Bye", {"choice": "blue"}),
    ]
    for i, (agent_id, sender, text, data) in enumerate(said):
        await store.add_message(MessageRow(
            id=f"m{i}", run_id="run", conversation_id="c0", agent_id=agent_id, client_id=f"cl{i}" if agent_id else None,
            sender=sender, text=text, data=data, created_at=1001.0 + i,
        ))
    await store.save_world_data("c0", run_id="run", data={"survey": {"Speaker 1": 4}})
    await store.create_conversation(Conversation(
        id="c1", run_id="run", index=1, state="partner_left", participants={"Speaker 1": "ag-a"}, created_at=2000.0,
    ))


async def _export(store: Store, fmt: Format, **options: Any) -> str:
    return "".join([chunk async for chunk in export_run(store, "run", fmt, salt=SALT, **options)])


async def test_jsonl_has_one_record_per_conversation_with_pseudonyms(store: Store) -> None:
    await _small_run(store)
    text = await _export(store, "jsonl", message_page=2)
    assert "WORKER-A" not in text and "WORKER-B" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    a, b = pseudonym("WORKER-A", SALT), pseudonym("WORKER-B", SALT)
    assert first["speakers"] == {"Speaker 1": a, "Speaker 2": b, "Critic": "bot:Critic"}
    assert [(m["speaker"], m["text"]) for m in first["messages"]] == [
        (a, "Hello, \"friend\",\nhow are you?"), (b, "Fine, thanks"), ("bot:Critic", "Nice chat."), (a, "Bye"),
    ]
    assert first["messages"][1]["annotations"] == {"rating": 5}
    assert first["messages"][3]["offset_s"] == 4.0
    assert first["world_data"] == {"survey": {"Speaker 1": 4}}
    assert (first["duration_s"], first["context"], first["review_status"]) == (60.0, {"topic": "tides"}, "pending")
    assert {w["speaker"]: w["review"] for w in first["workers"]} == {a: "approved", b: "pending"}
    assert (second["messages"], second["state"], second["review_status"]) == ([], "partner_left", "approved")


async def test_raw_worker_ids_only_with_the_flag(store: Store) -> None:
    await _small_run(store)
    record = json.loads((await _export(store, "jsonl", raw_worker_ids=True)).splitlines()[0])
    assert record["speakers"]["Speaker 1"] == "WORKER-A"


async def test_pseudonyms_are_stable_per_database_salt(store: Store) -> None:
    await _small_run(store)
    once = "".join([c async for c in export_run(store, "run", "jsonl")])
    twice = "".join([c async for c in export_run(store, "run", "jsonl")])
    assert once == twice and "WORKER-A" not in once


async def test_parlai_format_reads_as_parlai_conversations(store: Store) -> None:
    await _small_run(store)
    lines = (await _export(store, "parlai", message_page=3)).splitlines()
    episode = json.loads(lines[0])
    # ParlAI's Conversations reader: turns are the flattened act pairs of "dialog", each with "id" and "text".
    turns = [turn for pair in episode["dialog"] for turn in pair]
    assert [len(pair) for pair in episode["dialog"]] == [2, 2]
    assert [(t["id"], t["text"]) for t in turns] == [
        ("Speaker 1", "Hello, \"friend\",\nhow are you?"), ("Speaker 2", "Fine, thanks"), ("Critic", "Nice chat."),
        ("Speaker 1", "Bye"),
    ]
    assert episode["context"] == [{"id": "context", "text": '{"topic":"tides"}', "data": {"topic": "tides"}}]
    assert json.loads(lines[1])["dialog"] == []


async def test_csv_has_a_row_per_message_and_one_for_an_empty_conversation(store: Store) -> None:
    await _small_run(store)
    rows = list(csv.DictReader(io.StringIO(await _export(store, "csv"))))
    assert [r["text"] for r in rows] == ["Hello, \"friend\",\nhow are you?", "Fine, thanks", "Nice chat.", "Bye", ""]
    assert rows[1]["speaker"] == pseudonym("WORKER-B", SALT) and json.loads(rows[1]["annotations"]) == {"rating": 5}
    assert rows[4]["conversation_id"] == "c1" and rows[4]["message_index"] == ""
    assert json.loads(rows[0]["world_data"]) == {"survey": {"Speaker 1": 4}}


async def test_an_unknown_format_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        await _export(store, "xml")  # type: ignore[arg-type]


# ---- a large run --------------------------------------------------------------------------------

BIG_CONVERSATION = 50_000
SMALL_CONVERSATIONS = 250
SMALL_SIZE = 200  # 50,000 + 250 x 200 = 100,000 messages


async def _large_run(store: Store) -> None:
    await store.ensure_run("run", task_module="tests.support.tasks:chat", options={})
    table = MessageRow.__table__  # type: ignore[attr-defined]
    sizes = [BIG_CONVERSATION] + [SMALL_SIZE] * SMALL_CONVERSATIONS
    for index, size in enumerate(sizes):
        await store.create_conversation(Conversation(
            id=f"c{index:04d}", run_id="run", index=index, state="completed", created_at=float(index),
            participants={"Speaker": "bot:Speaker"},
        ))
        for start in range(0, size, 10_000):
            rows = [
                {"id": f"m{index:04d}-{i:06d}", "run_id": "run", "conversation_id": f"c{index:04d}", "agent_id": None,
                 "client_id": None, "sender": "Speaker", "kind": "chat", "text": f"message number {i} " + "x" * 80,
                 "data": {"i": i}, "created_at": index + i / 1e6}
                for i in range(start, min(size, start + 10_000))
            ]
            async with store.engine.begin() as conn:
                await conn.execute(insert(table), rows)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_run_of_100k_messages_exports_in_bounded_memory(store: Store, fmt: Format) -> None:
    await _large_run(store)
    written = records = 0
    tracemalloc.start()
    try:
        async for chunk in export_run(store, "run", fmt, salt=SALT):
            written += len(chunk)
            records += chunk.count("\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written > 10_000_000  # the output is far larger than what export may hold at once
    assert peak < 8_000_000, f"export held {peak / 1e6:.1f} MB at its peak for {written / 1e6:.1f} MB of output"
    expected = {"jsonl": 1 + SMALL_CONVERSATIONS, "parlai": 1 + SMALL_CONVERSATIONS}.get(fmt)
    if expected is not None:
        assert records == expected
