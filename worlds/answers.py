"""Reading a worker's answer to a widget, checked against the widget that asked for it.

The worker page sends `{"rating": int}`, `{"choice": str}`, `{"checkboxes": [str]}` or `{"form": {name: value}}`
in a message's `data` (free text arrives as the message text). The page validates too, but a world must not
trust a frame: `ask()` re-asks, with a notice, until the answer fits the widget, and gives up after a few
tries with `BadAnswer` (the conversation then ends as failed and the worker can still submit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worlds.base import Agent, Message, Widget

ATTEMPTS = 3


class BadAnswer(ValueError):
    """An answer that does not fit its widget; the message says why, in words a worker understands."""


def optional_text(placeholder: str = "Optional", max_length: int = 1000) -> Widget:
    """A free-text field the worker may leave empty (for use inside a form)."""
    return Widget("text", {"placeholder": placeholder, "max_length": max_length, "required": False})


def read_answer(widget: Widget | Mapping[str, Any], message: Message) -> Any:
    """The value `message` gives for `widget`, or BadAnswer. Text -> str, rating -> int, choice -> str,
    checkboxes -> list[str] (in the widget's order), form and fragment -> {name: value}."""
    spec = widget.to_dict() if isinstance(widget, Widget) else dict(widget)
    kind = spec.get("kind", "text")
    if kind == "fragment":
        return _read_fragment(spec, message.data.get("form"))
    if kind == "form":
        values = message.data.get("form")
        if not isinstance(values, dict):
            raise BadAnswer("the form's answers are missing")
        return {f["name"]: _read_value(f, values.get(f["name"]), f.get("label") or f["name"]) for f in spec["fields"]}
    value = message.text if kind == "text" else message.data.get(kind)
    return _read_value(spec, value, "your answer")


def _read_value(spec: Mapping[str, Any], value: Any, what: str) -> Any:
    kind = spec.get("kind", "text")
    if kind == "text":
        text = value.strip() if isinstance(value, str) else ""
        if not text and spec.get("required", True):
            raise BadAnswer(f"{what} is empty")
        limit = spec.get("max_length")  # none: the server's limit on a message already applies
        if limit is not None and len(text) > int(limit):
            raise BadAnswer(f"{what} is too long")
        return text
    if kind == "rating":
        low, high = int(spec["min"]), int(spec["max"])
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadAnswer(f"{what} must be a whole number from {low} to {high}")
        return value
    if kind == "choice":
        if value not in spec["options"]:
            raise BadAnswer(f"{what} must be one of the options shown")
        return value
    if kind == "checkboxes":
        if not isinstance(value, list) or any(v not in spec["options"] for v in value):
            raise BadAnswer(f"{what} must only tick options shown")
        return [option for option in spec["options"] if option in value]
    raise BadAnswer(f"unexpected answer kind {kind!r}")


FRAGMENT_VALUE_CHARS = 5000


def _read_fragment(spec: Mapping[str, Any], values: Any) -> dict[str, Any]:
    """A task fragment's fields: text, numbers, booleans, lists of text (checkbox groups) or None."""
    if not isinstance(values, dict):
        raise BadAnswer("the form's answers are missing")
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, str | int | float | bool) for v in items):
            raise BadAnswer(f"{name} has an answer of an unexpected kind")
        if sum(len(v) for v in items if isinstance(v, str)) > FRAGMENT_VALUE_CHARS:
            raise BadAnswer(f"{name} is too long")
    for name in spec.get("fields", []):
        if values.get(name) in (None, "", []):
            raise BadAnswer(f"{name} is not answered")
    return dict(values)


async def ask(agent: Agent, *, prompt: str, widget: Widget, timeout: float | None) -> tuple[Any, Message]:
    """Give `agent` a turn with `widget`; return (the checked value, the message that carried it)."""
    for attempt in range(1, ATTEMPTS + 1):
        message = await agent.act(timeout=timeout, prompt=prompt, widget=widget)
        try:
            return read_answer(widget, message), message
        except BadAnswer as exc:
            if attempt == ATTEMPTS:
                raise
            await agent.observe(Message(
                kind="system", sender="Task", text=f"That answer could not be used: {exc}. Please answer again.",
            ))
    raise AssertionError("unreachable")
