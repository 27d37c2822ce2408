"""MTurk answers of static form HITs: QuestionFormAnswers XML -> one record per item and worker.

An HTMLQuestion's form fields come back in the assignment's `Answer` as
`<QuestionFormAnswers><Answer><QuestionIdentifier>name</QuestionIdentifier><FreeText>value</FreeText>...`.
A field submitted several times (a checkbox group) becomes a list; `SelectionIdentifier` answers (QuestionForm
HITs) are read the same way. Documents with a DOCTYPE are refused (no entity tricks).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

ITEM_FIELD = "item_id"  # the hidden field of a form page that names its item
AnswerValue = str | list[str]


class FormAnswerError(ValueError):
    """An Answer document or assignment that cannot be read; the message says which and why."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_answer_xml(xml: str) -> dict[str, AnswerValue]:
    """{question identifier: value}; a repeated identifier (or several selections) gives a list."""
    if "<!DOCTYPE" in xml.upper():
        raise FormAnswerError("answer XML must not contain a DOCTYPE")
    try:
        root = ET.fromstring(xml.strip())
    except ET.ParseError as exc:
        raise FormAnswerError(f"answer XML is not well-formed: {exc}") from exc
    if _local(root.tag) != "QuestionFormAnswers":
        raise FormAnswerError(f"expected QuestionFormAnswers, got {_local(root.tag)}")
    answers: dict[str, AnswerValue] = {}
    for answer in root:
        if _local(answer.tag) != "Answer":
            continue
        name: str | None = None
        values: list[str] = []
        for part in answer:
            tag = _local(part.tag)
            if tag == "QuestionIdentifier":
                name = (part.text or "").strip()
            elif tag in ("FreeText", "SelectionIdentifier", "OtherSelectionText"):
                values.append(part.text or "")
        if not name:
            raise FormAnswerError("an Answer has no QuestionIdentifier")
        _add(answers, name, values)
    return answers


def _add(answers: dict[str, AnswerValue], name: str, values: list[str]) -> None:
    previous = answers.get(name)
    if previous is None:
        answers[name] = values[0] if len(values) == 1 else values
        return
    merged = previous if isinstance(previous, list) else [previous]
    answers[name] = [*merged, *values]


def record_from_assignment(assignment: Mapping[str, Any], *, item_id: str | None = None) -> dict[str, Any]:
    """One record from a boto3 assignment (`AssignmentId`, `WorkerId`, `HITId`, `Answer`).

    The item comes from the form's hidden `item_id` field, or from `item_id` (e.g. a HIT id -> item map).
    """
    try:
        answers = parse_answer_xml(str(assignment["Answer"]))
        ids = {k: str(assignment[k]) for k in ("AssignmentId", "WorkerId", "HITId")}
    except KeyError as exc:
        raise FormAnswerError(f"assignment has no {exc.args[0]}") from exc
    except FormAnswerError as exc:
        raise FormAnswerError(f"assignment {assignment.get('AssignmentId', '?')}: {exc}") from exc
    answers.pop("assignmentId", None)
    hidden = answers.pop(ITEM_FIELD, None)
    item = item_id if item_id is not None else hidden
    if not isinstance(item, str) or not item:
        raise FormAnswerError(f"assignment {ids['AssignmentId']}: no {ITEM_FIELD} field and no item_id given")
    return {
        "item_id": item, "worker_id": ids["WorkerId"], "assignment_id": ids["AssignmentId"],
        "hit_id": ids["HITId"], "answers": answers,
    }


def records_from_assignments(
    assignments: Iterable[Mapping[str, Any]], item_for_hit: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Records for many assignments; one per (item, worker), the last submitted answer winning."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for assignment in assignments:
        hit = str(assignment.get("HITId", ""))
        record = record_from_assignment(assignment, item_id=(item_for_hit or {}).get(hit))
        by_key[(record["item_id"], record["worker_id"])] = record
    return list(by_key.values())
