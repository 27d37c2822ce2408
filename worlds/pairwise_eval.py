"""Pairwise evaluation (ACUTE-Eval style): the worker compares two complete conversations, several pairs a HIT.

Flow: for each pair of the HIT, the task pane shows both conversations (a `context` message whose text lists
them one after the other and whose `data["conversations"]` carries both, as {"A": [...], "B": [...]}, so a
page can lay them side by side); the worker picks one for the question ("Who would you prefer to talk to for
a long conversation?") and gives a reason, in one `form`. Each HIT mixes `pairs_per_hit` pairs under
evaluation with `gold_per_hit` gold pairs whose better side is known; which model appears as A is shuffled
per pair (seeded, so a run is reproducible) and the model names never reach the page.

Saved record (one per HIT, updated after every pair):
    {"hit": int, "question": str,
     "results": [{"pair_id": str, "shown": {"A": model, "B": model}, "choice": "A" | "B", "winner": model,
                  "loser": model, "reason": str, "gold": bool, "correct": bool | None}],
     "gold": {"total": int, "correct": int, "passed": bool}}
`worlds.pairwise_results.win_rate_table(records)` turns saved records into a win-rate table.

Pairs: `worlds/data/pairwise_conversations.jsonl`, one pair per line:
    {"id": str, "conversations": [{"model": str, "dialogue": [{"speaker", "text"}...]}, {...}],
     "gold": 0 | 1 (gold pairs only: the index of the better conversation)}
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from worlds.answers import ask
from worlds.base import (
    Caps,
    ContextFileError,
    GoldPolicy,
    Message,
    Task,
    Timeouts,
    World,
    choice,
    form,
    jsonl_contexts,
    text_input,
)

PAIRS = Path(__file__).parent / "data" / "pairwise_conversations.jsonl"
QUESTION = "Who would you prefer to talk to for a long conversation?"
SIDES = ("A", "B")


def check_pair(pair: dict[str, Any], position: int) -> dict[str, Any]:
    where = f"pair {pair.get('id', '?')!r} (entry {position})"
    conversations = pair.get("conversations")
    if not isinstance(conversations, list) or len(conversations) != 2:
        raise ContextFileError(f"{where}: needs exactly two conversations")
    for conv in conversations:
        if not isinstance(conv, dict) or not isinstance(conv.get("model"), str) or not conv.get("dialogue"):
            raise ContextFileError(f"{where}: each conversation needs a model name and a dialogue")
    if pair.get("gold") not in (None, 0, 1):
        raise ContextFileError(f"{where}: gold must be 0 or 1 (the index of the better conversation)")
    if "id" not in pair:
        raise ContextFileError(f"{where}: needs an id")
    return pair


def build_hits(
    pairs: Iterable[dict[str, Any]], *, pairs_per_hit: int, gold_per_hit: int, seed: int = 0
) -> Iterator[dict[str, Any]]:
    """HIT contexts: {"hit", "pairs": [{"pair_id", "gold": "A"|"B"|None, "shown": {"A": conv, "B": conv}}]}."""
    checked = [check_pair(p, i) for i, p in enumerate(pairs, start=1)]
    gold = [p for p in checked if p.get("gold") is not None]
    tested = [p for p in checked if p.get("gold") is None]
    if not tested:
        raise ContextFileError("the pairs file has no pair to evaluate (all are gold)")
    if gold_per_hit and not gold:
        raise ContextFileError(f"gold_per_hit={gold_per_hit} but the pairs file has no gold pair")
    for hit, start in enumerate(range(0, len(tested), pairs_per_hit)):
        rng = random.Random(f"{seed}:{hit}")
        chosen = tested[start:start + pairs_per_hit]
        golds = [gold[(hit * gold_per_hit + k) % len(gold)] for k in range(gold_per_hit)] if gold else []
        items = list(chosen)
        for g in golds:
            items.insert(rng.randint(0, len(items)), g)
        yield {"hit": hit, "pairs": [_shown(p, rng) for p in items]}


def _shown(pair: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    first, second = pair["conversations"]
    swap = rng.random() < 0.5
    a, b = (second, first) if swap else (first, second)
    better = pair.get("gold")
    gold_side = None if better is None else SIDES[better ^ int(swap)]
    return {"pair_id": pair["id"], "gold": gold_side, "shown": {"A": a, "B": b}}


def render_pair(shown: dict[str, Any]) -> str:
    blocks = []
    for side in SIDES:
        lines = "\n".join(f"{t['speaker']}: {t['text']}" for t in shown[side]["dialogue"])
        blocks.append(f"Conversation {side}\n{lines}")
    return "\n\n".join(blocks)


class PairwiseEvalWorld(World):
    question = QUESTION
    turn_timeout = 300.0
    gold_threshold = 1.0

    async def run(self) -> None:
        worker = self.agent("Evaluator")
        hit = self.context or {"hit": 0, "pairs": []}
        widget = form([
            ("choice", self.question, choice([f"Conversation {s}" for s in SIDES])),
            ("reason", "Why? One sentence is enough.", text_input("Your reason...", max_length=1000)),
        ])
        results: list[dict[str, Any]] = []
        for n, item in enumerate(hit["pairs"], start=1):
            shown = item["shown"]
            await worker.observe(Message(
                kind="context", sender="Task", text=render_pair(shown),
                # The question is asked once, where it is answered (the form below the conversations).
                data={"pair": n, "of": len(hit["pairs"]), "conversations": {s: shown[s]["dialogue"] for s in SIDES}},
            ))
            answer, _ = await ask(
                worker, timeout=self.turn_timeout, widget=widget,
                prompt=f"Pair {n} of {len(hit['pairs'])}: read both conversations, then answer below.",
            )
            side = answer["choice"].removeprefix("Conversation ")
            other = SIDES[1 - SIDES.index(side)]
            results.append({
                "pair_id": item["pair_id"], "shown": {s: shown[s]["model"] for s in SIDES}, "choice": side,
                "winner": shown[side]["model"], "loser": shown[other]["model"], "reason": answer["reason"],
                "gold": item["gold"] is not None, "correct": None if item["gold"] is None else side == item["gold"],
            })
            if item["gold"] is not None:  # the task's GoldPolicy acts on it (flag for rejection by default)
                await self.gold(worker, side == item["gold"], item["pair_id"])
            await self.save(self._record(hit["hit"], results))

    def _record(self, hit: int, results: list[dict[str, Any]]) -> dict[str, Any]:
        checks = [r["correct"] for r in results if r["gold"]]
        passed = not checks or sum(checks) / len(checks) >= self.gold_threshold
        return {
            "hit": hit, "question": self.question, "results": results,
            "gold": {"total": len(checks), "correct": sum(checks), "passed": passed},
        }


FLAG_FAILED_GOLD = GoldPolicy(flag_for_rejection=True)  # a failed gold pair marks the HIT for rejection


def make_task(
    pairs_path: str | None = None,
    pairs: Iterable[dict[str, Any]] | None = None,
    pairs_per_hit: int = 3,
    gold_per_hit: int = 1,
    question: str = QUESTION,
    gold_threshold: float = 1.0,
    seed: int = 0,
    turn_timeout: float = 300.0,
    target_conversations: int = 1000,
    gold_policy: GoldPolicy | None = FLAG_FAILED_GOLD,
) -> Task:
    if pairs_per_hit < 1 or gold_per_hit < 0:
        raise ValueError("pairs_per_hit must be >= 1 and gold_per_hit >= 0")
    source = pairs if pairs is not None else jsonl_contexts(pairs_path or PAIRS)

    return Task(
        name="pairwise_eval",
        title="Compare two chatbot conversations",
        description=(
            f"Read {pairs_per_hit + gold_per_hit} pairs of short conversations. For each pair, pick the one whose "
            "chatbot you would rather talk to and say why."
        ),
        world=PairwiseEvalWorld,
        replayable=True,
        world_options={"question": question, "turn_timeout": turn_timeout, "gold_threshold": gold_threshold},
        roles=["Evaluator"],
        contexts=build_hits(source, pairs_per_hit=pairs_per_hit, gold_per_hit=gold_per_hit, seed=seed),
        reward=0.4,
        gold=gold_policy,
        keywords=["chatbot", "comparison", "evaluation"],
        timeouts=Timeouts(turn=turn_timeout, waiting=60.0),
        caps=Caps(
            max_conversations=200, max_waiting=400, per_worker_total=20, target_conversations=target_conversations
        ),
    )
