"""Percent agreement and Fleiss' kappa over several answers per item."""

from __future__ import annotations

import pytest

from worlds.agreement import agreement, fleiss_kappa, percent_agreement

# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories; P-bar 0.378, kappa 0.210.
COUNTS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]
WIKIPEDIA = {
    f"s{i}": [label for label, n in zip("abcde", row, strict=True) for _ in range(n)] for i, row in enumerate(COUNTS)
}


def test_fleiss_kappa_matches_the_published_worked_example() -> None:
    assert percent_agreement(WIKIPEDIA) == pytest.approx(0.378, abs=5e-4)
    assert fleiss_kappa(WIKIPEDIA) == pytest.approx(0.210, abs=5e-4)


def test_unanimous_answers_agree_fully_and_kappa_is_undefined_when_only_one_label_is_used() -> None:
    assert percent_agreement({"a": ["x", "x"], "b": ["y", "y"]}) == 1.0
    assert fleiss_kappa({"a": ["x", "x"], "b": ["y", "y"]}) == pytest.approx(1.0)
    assert fleiss_kappa({"a": ["x", "x"], "b": ["x", "x"]}) is None


def test_items_with_a_single_answer_are_left_out_and_raters_may_differ_per_item() -> None:
    records = [
        {"item_id": "t1", "answers": {"emotion": "happy"}},
        {"item_id": "t1", "answers": {"emotion": "happy"}},
        {"item_id": "t1", "answers": {"emotion": "angry"}},
        {"item_id": "t2", "answers": {"emotion": "upset"}},
        {"item_id": "t2", "answers": {"emotion": "upset"}},
        {"item_id": "t3", "answers": {"emotion": "scared"}},
        {"item_id": "t3", "answers": {"other": "ignored"}},
    ]
    figures = agreement(records, "emotion")
    assert (figures.items, figures.answers) == (2, 5)
    assert figures.percent_agreement == pytest.approx((1 / 3 + 1) / 2)
    assert figures.majority == {"t1": "happy", "t2": "upset", "t3": "scared"}
    assert figures.fleiss_kappa is not None and 0 < figures.fleiss_kappa < 1
