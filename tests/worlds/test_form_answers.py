"""QuestionFormAnswers XML from MTurk (or Parley's sandbox) into one record per item and worker."""

from __future__ import annotations

import pytest

from server.sandbox.question import answer_xml
from worlds.form_answers import FormAnswerError, parse_answer_xml, record_from_assignment, records_from_assignments

NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"


def assignment(worker: str, fields: list[tuple[str, str]], hit: str = "H1", aid: str | None = None) -> dict[str, str]:
    return {"AssignmentId": aid or f"A-{worker}", "WorkerId": worker, "HITId": hit, "Answer": answer_xml(fields)}


def test_a_submitted_form_becomes_one_record_with_the_item_from_the_hidden_field() -> None:
    record = record_from_assignment(assignment("W1", [("assignmentId", "A-W1"), ("item_id", "t3"),
                                                      ("emotion", "scared")]))
    assert record == {"item_id": "t3", "worker_id": "W1", "assignment_id": "A-W1", "hit_id": "H1",
                      "answers": {"emotion": "scared"}}


def test_escaped_text_repeated_fields_and_selection_answers_are_read() -> None:
    xml = (
        f'<QuestionFormAnswers xmlns="{NS}">'
        "<Answer><QuestionIdentifier>note</QuestionIdentifier><FreeText>a &lt;b&gt; &amp; c</FreeText></Answer>"
        "<Answer><QuestionIdentifier>tags</QuestionIdentifier><FreeText>x</FreeText></Answer>"
        "<Answer><QuestionIdentifier>tags</QuestionIdentifier><FreeText>y</FreeText></Answer>"
        "<Answer><QuestionIdentifier>pick</QuestionIdentifier><SelectionIdentifier>s1</SelectionIdentifier>"
        "<SelectionIdentifier>s2</SelectionIdentifier></Answer>"
        "</QuestionFormAnswers>"
    )
    assert parse_answer_xml(xml) == {"note": "a <b> & c", "tags": ["x", "y"], "pick": ["s1", "s2"]}


@pytest.mark.parametrize(("xml", "reason"), [
    ("<QuestionFormAnswers><Answer>", "not well-formed"),
    ("<Other/>", "expected QuestionFormAnswers"),
    ('<!DOCTYPE x [<!ENTITY a "b">]><QuestionFormAnswers/>', "DOCTYPE"),
    ("<QuestionFormAnswers><Answer><FreeText>v</FreeText></Answer></QuestionFormAnswers>", "no QuestionIdentifier"),
])
def test_unreadable_answers_are_refused_with_a_reason(xml: str, reason: str) -> None:
    with pytest.raises(FormAnswerError, match=reason):
        parse_answer_xml(xml)


def test_an_assignment_without_an_item_is_refused_unless_the_hit_names_it() -> None:
    plain = assignment("W1", [("emotion", "happy")], hit="H7")
    with pytest.raises(FormAnswerError, match="A-W1: no item_id"):
        record_from_assignment(plain)
    [record] = records_from_assignments([plain], item_for_hit={"H7": "t7"})
    assert record["item_id"] == "t7"


def test_one_record_per_item_and_worker_the_last_answer_winning() -> None:
    records = records_from_assignments([
        assignment("W1", [("item_id", "t1"), ("emotion", "happy")], aid="A1"),
        assignment("W2", [("item_id", "t1"), ("emotion", "angry")], aid="A2"),
        assignment("W1", [("item_id", "t1"), ("emotion", "upset")], aid="A3"),
        assignment("W1", [("item_id", "t2"), ("emotion", "happy")], aid="A4"),
    ])
    assert sorted((r["item_id"], r["worker_id"], r["answers"]["emotion"]) for r in records) == [
        ("t1", "W1", "upset"), ("t1", "W2", "angry"), ("t2", "W1", "happy"),
    ]
