"""Model evaluator on a real server: presence onboarding, a bot reply to a context, a 0-10 rating."""

from __future__ import annotations

from server.store import Store
from tests.worlds.conftest import Players, record_of
from worlds.model_evaluator import PRESENT


async def test_a_worker_confirms_presence_then_rates_the_bots_reply_and_the_record_is_saved(
    store: Store, players: Players
) -> None:
    rater = await players.join("evaluator", "W-eval")
    presence = await rater.answer(PRESENT, {"choice": PRESENT})
    assert presence["widget"] == {"kind": "choice", "options": [PRESENT]}

    rating_turn = await rater.turn()
    assert rating_turn["widget"]["kind"] == "rating"
    assert (rating_turn["widget"]["min"], rating_turn["widget"]["max"]) == (0, 10)
    context = rater.messages("context")[-1]
    reply = next(m for m in rater.messages("chat") if m["sender"] == "Model")
    await rater.worker.say("Rating: 7", {"rating": 7})
    await rater.worker.wait_state("done")

    record = await record_of(store, rater)
    assert record["rating"] == 7 and record["error"] is None and record["bot"] == "echo"
    assert record["response"]["text"] == reply["text"] and record["response"]["id"] == reply["message_id"]
    assert record["context"]["id"] == context["data"]["context_id"]
    last_line = record["context"]["dialogue"][-1]["text"]
    assert reply["text"] == f"You said: {last_line}"  # the bot was given the context


async def test_a_rating_outside_the_scale_is_asked_again(store: Store, players: Players) -> None:
    rater = await players.join("evaluator", "W-eval-bad")
    await rater.answer(PRESENT, {"choice": PRESENT})
    await rater.answer("Rating: 11", {"rating": 11})
    await rater.answer("Rating: 10", {"rating": 10})
    await rater.worker.wait_state("done")
    notices = [m["text"] for m in rater.messages("system")]
    assert any("from 0 to 10" in text for text in notices)
    assert (await record_of(store, rater))["rating"] == 10


async def test_a_stalled_model_ends_the_hit_with_a_notice_instead_of_a_hung_worker(
    store: Store, players: Players
) -> None:
    rater = await players.join("evaluator_stalling_llm", "W-eval-llm")
    await rater.answer(PRESENT, {"choice": PRESENT})
    notice = await rater.wait_message(lambda f: f["kind"] == "system" and f["sender"] == "Model")
    assert "took too long" in notice["text"]
    done = await rater.worker.wait_state("done")
    assert done["can_submit"] is True
    record = await record_of(store, rater)
    assert record["rating"] is None and record["response"] is None
    assert record["error"]["type"] == "timeout"
