"""Inter-annotator agreement over several answers per item: percent agreement and Fleiss' kappa.

Input: records with `item_id` and `answers` (from `worlds.static_form` or `worlds.form_answers`), or directly
`{item: [label, ...]}`. Items with fewer than two answers say nothing about agreement and are skipped.
Percent agreement is the mean, over items, of the share of rater pairs that agree (Fleiss' P-bar); kappa
corrects it for the agreement expected by chance from the overall label frequencies, and allows items to
have different numbers of raters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Agreement:
    items: int  # items with two or more answers
    answers: int  # answers on those items
    percent_agreement: float  # 0..1
    fleiss_kappa: float | None  # None when chance agreement is total (every answer the same label)
    majority: dict[str, str]  # item -> its most frequent label (ties: the first given)
    item_agreement: dict[str, float] = field(default_factory=dict)  # item (2+ answers) -> share of agreeing pairs


def answers_by_item(records: Iterable[Mapping[str, Any]], field: str) -> dict[str, list[str]]:
    by_item: dict[str, list[str]] = {}
    for record in records:
        value = record.get("answers", {}).get(field)
        if isinstance(value, str) and value:
            by_item.setdefault(str(record["item_id"]), []).append(value)
    return by_item


def _item_agreement(labels: Sequence[str]) -> float:
    n = len(labels)
    return sum(c * (c - 1) for c in Counter(labels).values()) / (n * (n - 1))


def percent_agreement(ratings: Mapping[str, Sequence[str]]) -> float:
    rated = [labels for labels in ratings.values() if len(labels) >= 2]
    return sum(_item_agreement(labels) for labels in rated) / len(rated) if rated else 0.0


def fleiss_kappa(ratings: Mapping[str, Sequence[str]]) -> float | None:
    rated = [labels for labels in ratings.values() if len(labels) >= 2]
    if not rated:
        return None
    totals: Counter[str] = Counter(label for labels in rated for label in labels)
    n = sum(totals.values())
    chance = sum((count / n) ** 2 for count in totals.values())
    if chance >= 1.0:
        return None
    observed = percent_agreement(ratings)
    return (observed - chance) / (1.0 - chance)


def agreement(records: Iterable[Mapping[str, Any]], field: str) -> Agreement:
    ratings = answers_by_item(records, field)
    rated = {item: labels for item, labels in ratings.items() if len(labels) >= 2}
    return Agreement(
        items=len(rated),
        answers=sum(len(labels) for labels in rated.values()),
        percent_agreement=percent_agreement(rated),
        fleiss_kappa=fleiss_kappa(rated),
        majority={item: Counter(labels).most_common(1)[0][0] for item, labels in ratings.items()},
        item_agreement={item: _item_agreement(labels) for item, labels in rated.items()},
    )
