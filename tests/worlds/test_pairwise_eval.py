"""Pairwise evaluation: HITs with gold pairs, a worker judging them on a real server, and win rates."""

from __future__ import annotations

from typing import Any

import pytest

from server.store import Store
from tests.worlds.conftest import Players, record_of
from worlds.base import ContextFileError, jsonl_contexts
from worlds.pairwise_eval import PAIRS, build_hits, check_pair
from worlds.pairwise_results import ALL, WinRate, format_table, win_rate_table

BAD_BOT_LINES = ("Purple seventeen", "asdf")


def hits(seed: int = 0) -> list[dict[str, Any]]:
    return list(build_hits(jsonl_contexts(PAIRS), pairs_per_hit=2, gold_per_hit=1, seed=seed))


def test_every_hit_mixes_its_pairs_with_a_gold_pair_whose_better_side_is_known() -> None:
    built = hits()
    assert len(built) == 3  # six pairs under test, two per HIT
    for hit in built:
        gold = [p for p in hit["pairs"] if p["gold"] is not None]
        assert len(hit["pairs"]) == 3 and len(gold) == 1
        better = gold[0]["shown"][gold[0]["gold"]]
        assert better["model"] == "gold-good"
    assert built == hits()  # reproducible for a seed
    sides = [p["shown"]["A"]["model"] for seed in range(5) for h in hits(seed) for p in h["pairs"]]
    assert len(set(sides)) > 2  # the order of A and B is shuffled


def test_a_malformed_pair_fails_at_start_naming_it() -> None:
    with pytest.raises(ContextFileError, match=r"pair 'x' \(entry 1\): needs exactly two"):
        check_pair({"id": "x", "conversations": []}, 1)
    with pytest.raises(ContextFileError, match="no gold pair"):
        list(build_hits([{"id": "x", "conversations": [{"model": "a", "dialogue": [1]}] * 2}],
                        pairs_per_hit=1, gold_per_hit=1))


async def test_a_worker_judges_each_pair_with_a_reason_and_the_gold_check_is_recorded(
    store: Store, players: Players
) -> None:
    worker = await players.join("pairwise", "W-acute")
    picks = []
    for n in range(1, 4):
        turn = await worker.turn()
        assert turn["widget"]["kind"] == "form"
        assert turn["widget"]["fields"][0]["options"] == ["Conversation A", "Conversation B"]
        shown = worker.messages("context")[-1]
        assert shown["data"]["pair"] == n and shown["data"]["of"] == 3
        assert set(shown["data"]["conversations"]) == {"A", "B"}
        assert "model" not in str(shown["data"])  # which model is which never reaches the page
        broken = [s for s, turns in shown["data"]["conversations"].items()
                  if any(bad in t["text"] for t in turns for bad in BAD_BOT_LINES)]
        side = "B" if broken == ["A"] else "A"
        picks.append(side)
        await worker.worker.say(f"Conversation {side}", {"form": {"choice": f"Conversation {side}", "reason": f"r{n}"}})
    await worker.worker.wait_state("done")

    record = await record_of(store, worker)
    assert record["hit"] == 0 and [r["choice"] for r in record["results"]] == picks
    assert record["gold"] == {"total": 1, "correct": 1, "passed": True}
    for result in record["results"]:
        assert result["winner"] == result["shown"][result["choice"]]
        assert result["reason"].startswith("r")
    table = win_rate_table([record])
    assert all(row.total > 0 for row in table)
    assert not any(row.model.startswith("gold") for row in table)


def test_win_rates_count_each_comparison_and_skip_hits_that_failed_gold() -> None:
    def result(winner: str, loser: str, gold: bool = False) -> dict[str, Any]:
        return {"winner": winner, "loser": loser, "gold": gold}

    passed = {"gold": {"passed": True}, "results": [
        result("llm", "echo"), result("llm", "echo"), result("echo", "llm"), result("retrieval", "echo"),
        result("gold-good", "gold-bad", gold=True),
    ]}
    failed = {"gold": {"passed": False}, "results": [result("echo", "llm")] * 5}
    table = {(r.model, r.opponent): r for r in win_rate_table([passed, failed])}
    assert table[("llm", "echo")] == WinRate("llm", "echo", 2, 1)
    assert table[("llm", "echo")].win_rate == pytest.approx(2 / 3)
    assert table[("echo", ALL)] == WinRate("echo", ALL, 1, 3)
    assert ("gold-good", "gold-bad") not in table
    with_failed = {(r.model, r.opponent): r for r in win_rate_table([passed, failed], require_gold=False)}
    assert with_failed[("echo", "llm")].wins == 6
    lines = format_table(win_rate_table([passed])).splitlines()
    assert lines[0].split() == ["model", "opponent", "wins", "losses", "win", "rate"]
    assert "llm              echo                 2      1     66.7%" in lines
