"""Win rates from pairwise evaluation records (the records `worlds.pairwise_eval` saves).

Gold pairs never count towards a model's win rate; by default a HIT whose gold check failed is left out
entirely, as ACUTE-Eval does with workers who fail its known-answer checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ALL = "(all)"


@dataclass(frozen=True)
class WinRate:
    model: str
    opponent: str  # ALL for the model against every opponent
    wins: int
    losses: int

    @property
    def total(self) -> int:
        return self.wins + self.losses

    @property
    def win_rate(self) -> float:
        return self.wins / self.total if self.total else 0.0


def win_rate_table(records: Iterable[dict[str, Any]], *, require_gold: bool = True) -> list[WinRate]:
    """One row per (model, opponent) compared, plus one per model against all, sorted by model then opponent."""
    wins: Counter[tuple[str, str]] = Counter()
    for record in records:
        if require_gold and not record.get("gold", {}).get("passed", True):
            continue
        for result in record.get("results", []):
            if not result.get("gold"):
                wins[(result["winner"], result["loser"])] += 1
    pairs = {tuple(sorted(key)) for key in wins}
    rows = []
    for a, b in pairs:
        rows.append(WinRate(a, b, wins[(a, b)], wins[(b, a)]))
        rows.append(WinRate(b, a, wins[(b, a)], wins[(a, b)]))
    models = {row.model for row in rows}
    for model in models:
        mine = [row for row in rows if row.model == model]
        rows.append(WinRate(model, ALL, sum(r.wins for r in mine), sum(r.losses for r in mine)))
    return sorted(rows, key=lambda r: (r.model, r.opponent != ALL, r.opponent))


def format_table(rows: list[WinRate]) -> str:
    """A plain-text table for a terminal or a report."""
    lines = [f"{'model':<16} {'opponent':<16} {'wins':>5} {'losses':>6} {'win rate':>9}"]
    for r in rows:
        lines.append(f"{r.model:<16} {r.opponent:<16} {r.wins:>5} {r.losses:>6} {r.win_rate:>9.1%}")
    return "\n".join(lines)
