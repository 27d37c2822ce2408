"""Multi-agent dialog on a real server: two workers and a ParlAI-style bot, round-robin until [DONE]."""

from __future__ import annotations

import asyncio

from server.store import Store
from tests.worlds.conftest import Players, record_of
from worlds.multi_agent_dialog import ends_conversation


async def test_a_message_ending_with_done_gives_every_other_participant_one_final_turn(
    store: Store, players: Players
) -> None:
    one = await players.join("multi", "W-m1")
    two = await players.join("multi", "W-m2")
    await asyncio.gather(one.worker.wait_state("in_task"), two.worker.wait_state("in_task"))

    await one.answer("Let's go to the coast.")
    await two.answer("Yes, the coast!")
    bot_line = await one.wait_message(lambda f: f["sender"] == "Bot 1")
    assert bot_line["text"] == "Human 2 said 'Yes, the coast!'"  # a ParlAI dict bot saw ParlAI dicts
    assert bot_line["data"]["heard"] == 3  # the topic and both messages
    await one.answer("Agreed, see you there [DONE]")
    final = await two.answer("Bye everyone!")
    assert "final message" in final["prompt"]
    await asyncio.gather(one.worker.wait_state("done"), two.worker.wait_state("done"))

    record = await record_of(store, one)
    assert record["participants"] == {"Human 1": "human", "Human 2": "human", "Bot 1": "bot"}
    assert [(d["speaker"], d["final"]) for d in record["dialogue"]] == [
        ("Human 1", False), ("Human 2", False), ("Bot 1", False), ("Human 1", False),
        ("Human 2", True), ("Bot 1", True),
    ]
    assert record["ended_by"] == "Human 1" and record["end_reason"] == "done"
    assert record["topic"] in one.messages("context")[0]["text"]
    # Each worker saw every message of the others, once, in order.
    seen = [(m["sender"], m["text"]) for m in one.messages("chat")]
    assert seen == [(d["speaker"], d["text"]) for d in record["dialogue"]]
    assert one.worker.duplicates == 0 and two.worker.duplicates == 0


def test_only_a_message_that_ends_with_the_marker_ends_the_dialog() -> None:
    assert ends_conversation("ok bye [DONE]  ")
    assert not ends_conversation("[DONE] but more to say")
    assert not ends_conversation("done")
