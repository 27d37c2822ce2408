"""Full flows on a real server: the QA collection and a paired chat_demo."""

import asyncio

import pytest

from server.store import Store
from tests.support.client import Crowd, JoinRefused, Worker
from tests.support.server import LiveServer


async def test_a_worker_completes_the_qa_collection_and_the_record_is_saved(
    store: Store, live: LiveServer, crowd: Crowd
) -> None:
    worker = await crowd.start("qa", "W-qa")
    first = await worker.wait_turn(1)
    assert "question" in first["prompt"]
    context = next(e for e in worker.events.values() if e["type"] == "message" and e["kind"] == "context")
    await worker.say("What do tide pools trap?")
    await worker.wait_turn(2)
    await worker.say("Water left by the sea.")
    done = await worker.wait_state("done")
    assert done["can_submit"] is True

    store = store
    agent = await store.get_agent(worker.agent_id)
    assert agent is not None
    data = await store.world_data(agent.conversation_id)
    assert data is not None
    assert data["question"] == "What do tide pools trap?"
    assert data["answer"] == "Water left by the sea."
    assert data["context"]["text"] == context["text"]
    await worker.send({"type": "submit"})
    await worker.wait_state("submitted")


async def _chat(a: Worker, b: Worker, turns_each: int) -> list[str]:
    said = []
    for i in range(turns_each):
        for n, speaker in enumerate((a, b)):
            await speaker.wait_turn(i + 1)
            text = f"{speaker.worker_id} message {i}"
            await speaker.say(text)
            said.append(text)
            await (b if n == 0 else a).wait_frame(lambda f, t=text: f.get("text") == t)
    return said


async def test_two_workers_are_paired_chat_in_turns_and_answer_the_survey(
    store: Store, live: LiveServer, crowd: Crowd
) -> None:
    a = await crowd.start("chat", "W-a")
    await a.wait_state("waiting")
    b = await crowd.start("chat", "W-b")
    await asyncio.gather(a.wait_state("in_task"), b.wait_state("in_task"))

    said = await _chat(a, b, turns_each=2)
    for worker, score in ((a, 4), (b, 5)):
        survey = await worker.wait_turn(3)
        assert survey["widget"]["kind"] == "form"
        await worker.say("survey", {"form": {"enjoyed": score, "partner_engaged": "Yes", "comment": ""}})
    await asyncio.gather(a.wait_state("done"), b.wait_state("done"))

    # Each worker saw every message exactly once, in order: their own as echoes, the partner's as deliveries.
    for worker in (a, b):
        chat = [m["text"] for m in worker.chat() if m["kind"] == "chat"]
        assert chat[:4] == said
        assert worker.duplicates == 0
    store = store
    agent = await store.get_agent(a.agent_id)
    assert agent is not None
    data = await store.world_data(agent.conversation_id)
    assert data is not None
    assert [d["text"] for d in data["dialogue"]] == said
    assert data["survey"] == {
        "Speaker 1": {"enjoyed": 4, "partner_engaged": "Yes", "comment": ""},
        "Speaker 2": {"enjoyed": 5, "partner_engaged": "Yes", "comment": ""},
    }
    stored = [m.text for m in await store.messages(agent.conversation_id)]
    assert stored[:4] == said


async def test_a_worker_is_not_paired_with_themselves(live: LiveServer, crowd: Crowd) -> None:
    # per_worker_concurrent is 1, so a second assignment of the same worker is refused outright
    a = await crowd.start("chat", "W-same")
    await a.wait_state("waiting")
    with pytest.raises(JoinRefused) as refused:
        await crowd.worker("chat", "W-same").join()
    assert refused.value.code == "too_many_concurrent"
    assert refused.value.status == 409
