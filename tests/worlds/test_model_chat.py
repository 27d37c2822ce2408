"""Model chat on a real server: the annotation screen, a chat with per-message labels, the final rating."""

from __future__ import annotations

import json

import pytest

from server.store import Store
from tests.support.client import JoinRefused
from tests.worlds.conftest import Player, Players, record_of
from tests.worlds.fake_llm import FakeLLM
from worlds.model_chat import LABELS, ONBOARDING_SAMPLE, load_sample, score_annotations

GOLD = [turn["gold"] for turn in json.loads(ONBOARDING_SAMPLE.read_text())["dialogue"] if "gold" in turn]


async def screen(player: Player, answers: list[list[str]]) -> None:
    for ticked in answers:
        turn = await player.answer(", ".join(ticked), {"checkboxes": ticked})
        assert turn["widget"] == {"kind": "checkboxes", "options": LABELS}


async def test_a_screened_worker_chats_labels_each_bot_reply_and_rates_the_bot(
    store: Store, players: Players
) -> None:
    worker = await players.join("chat", "W-chat")
    await screen(worker, GOLD)
    await worker.worker.wait_state("in_task")

    await worker.answer("I just adopted a dog.")
    first = await worker.wait_message(lambda f: f["sender"] == "Bot")
    label_turn = await worker.turn()
    assert label_turn["widget"] == {"kind": "checkboxes", "options": LABELS, "message_id": first["message_id"]}
    await worker.worker.say("Evil", {"checkboxes": ["Evil"]})  # not an offered label: asked again
    await worker.answer("Engaging", {"checkboxes": ["Engaging"]})
    await worker.answer("I love hiking in the mountains too.")
    second = await worker.wait_message(lambda f: f["sender"] == "Bot" and f["message_id"] != first["message_id"])
    await worker.answer("(none selected)", {"checkboxes": []})
    final = await worker.answer("", {"form": {"rating": 4, "reason": "Friendly and on topic."}})
    assert [f["name"] for f in final["widget"]["fields"]] == ["rating", "reason"]
    await worker.worker.wait_state("done")

    record = await record_of(store, worker)
    assert record["annotations"] == {first["message_id"]: ["Engaging"], second["message_id"]: []}
    assert record["rating"] == 4 and record["reason"] == "Friendly and on topic."
    assert [d["speaker"] for d in record["dialogue"]] == ["Worker", "Bot", "Worker", "Bot"]
    assert record["dialogue"][1] == {"id": first["message_id"], "speaker": "Bot", "text": first["text"]}
    assert any("must only tick options shown" in m["text"] for m in worker.messages("system"))
    agent = await store.get_agent(worker.worker.agent_id)
    assert agent is not None
    assert first["message_id"] in {m.id for m in await store.messages(agent.conversation_id)}


async def test_a_worker_who_fails_the_screen_is_refused_from_then_on(store: Store, players: Players) -> None:
    worker = await players.join("chat", "W-careless")
    await screen(worker, [[] for _ in GOLD])
    await worker.worker.wait_state("onboarding_failed")
    [screening] = await store.conversations("chat", kind="onboarding")
    result = await store.world_data(screening.id)
    assert result is not None
    assert (result["score"], result["passed"], len(result["answers"])) == (0.0, False, len(GOLD))
    with pytest.raises(JoinRefused) as refused:
        await players.join("chat", "W-careless")
    assert refused.value.code == "onboarding_failed"


async def test_an_llm_bot_streams_replies_and_a_model_error_shows_a_notice_without_annotation(
    store: Store, players: Players, llm: FakeLLM
) -> None:
    worker = await players.join("chat_llm", "W-llm")
    await worker.answer("hello model")
    reply = await worker.wait_message(lambda f: f["sender"] == "Bot")
    assert reply["text"] == "Model heard: hello model"
    assert reply["data"]["llm"]["streamed"] is True
    typing = [f for f in worker.worker.frames if f["type"] == "typing"]
    assert {(f["sender"], f["active"]) for f in typing} == {("Bot", True), ("Bot", False)}
    await worker.answer("Engaging", {"checkboxes": ["Engaging"]})

    await worker.answer("please fail now")
    notice = await worker.wait_message(lambda f: f["kind"] == "system" and f["sender"] == "Bot")
    assert "HTTP 500" in notice["text"] and notice["data"]["error"]["status"] == 500
    final = await worker.answer("", {"form": {"rating": 2, "reason": "It broke."}})  # no label turn for a notice
    assert final["widget"]["kind"] == "form"
    await worker.worker.wait_state("done")

    record = await record_of(store, worker)
    assert list(record["annotations"]) == [reply["message_id"]]
    assert record["dialogue"][-1]["error"]["type"] == "http_status"
    assert all(r["stream"] for r in llm.requests)


def test_the_screen_scores_whole_messages_against_gold() -> None:
    assert score_annotations([(["Rude"], ["Rude"]), ([], ["Engaging"])]) == 0.5
    assert score_annotations([(["Rude", "Engaging"], ["Engaging", "Rude"])]) == 1.0
    assert score_annotations([([], []) for _ in range(4)]) == 1.0


def test_custom_labels_must_cover_the_samples_gold_labels() -> None:
    with pytest.raises(ValueError, match="not among the task's labels"):
        load_sample(ONBOARDING_SAMPLE, ["Engaging", "Rude"])
