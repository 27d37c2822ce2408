"""Checking a worker's answer against the widget that asked for it."""

from __future__ import annotations

import pytest

from worlds.answers import BadAnswer, optional_text, read_answer
from worlds.base import Message, checkboxes, choice, form, rating, text_input


def answer(text: str = "", **data: object) -> Message:
    return Message(text=text, data=dict(data))


def test_each_widget_kind_gives_its_checked_value() -> None:
    assert read_answer(text_input(), answer("  hi  ")) == "hi"
    assert read_answer(rating(1, 5), answer(rating=5)) == 5
    assert read_answer(choice(["a", "b"]), answer(choice="b")) == "b"
    assert read_answer(checkboxes(["a", "b", "c"]), answer(checkboxes=["c", "a"])) == ["a", "c"]
    survey = form([("score", "Score", rating(0, 3)), ("note", "Note", optional_text())])
    assert read_answer(survey, answer(form={"score": 0, "note": ""})) == {"score": 0, "note": ""}


@pytest.mark.parametrize(("widget", "message", "reason"), [
    (text_input(), answer("   "), "empty"),
    (text_input(max_length=3), answer("long"), "too long"),
    (rating(0, 10), answer(rating=11), "from 0 to 10"),
    (rating(0, 10), answer(rating=True), "whole number"),
    (rating(0, 10), answer(rating="7"), "whole number"),
    (choice(["a"]), answer(choice="z"), "one of the options"),
    (checkboxes(["a"]), answer(checkboxes="a"), "only tick"),
    (form([("x", "X", rating(1, 2))]), answer(form=[]), "form's answers are missing"),
    (form([("x", "Your X", rating(1, 2))]), answer(form={}), "Your X must be"),
])
def test_an_answer_that_does_not_fit_its_widget_is_refused_with_a_reason(
    widget: object, message: Message, reason: str
) -> None:
    with pytest.raises(BadAnswer, match=reason):
        read_answer(widget, message)  # type: ignore[arg-type]
