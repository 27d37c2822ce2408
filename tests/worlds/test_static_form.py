"""Static form task: the HTML template, the HTMLQuestion wrapper, and the item flow on a real server."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from pathlib import Path

import pytest

from server.sandbox.question import parse_question
from server.store import Store
from tests.worlds.conftest import Players, record_of
from tests.worlds.tasks import SAME_TWEET
from worlds.agreement import agreement
from worlds.base import ContextFileError
from worlds.static_form import EMOTIONS, FormSpec, html_question, make_task, render_item_html

NASTY = {"id": 'x"><b>', "text": "<script>alert('hi')</script> & friends"}


class Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.inputs.append(dict(attrs))
        self.scripts += tag == "script"


def test_the_item_page_escapes_the_item_and_offers_one_radio_button_per_option() -> None:
    html = render_item_html(NASTY)
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt; &amp; friends" in html
    page = Inputs()
    page.feed(html)
    assert page.scripts == 1  # only the page's own submit helper
    hidden = {i["name"]: i["value"] for i in page.inputs if i["type"] == "hidden"}
    assert hidden == {"assignmentId": "", "item_id": 'x"><b>'}
    radios = [i for i in page.inputs if i["type"] == "radio"]
    assert [r["value"] for r in radios] == EMOTIONS and {r["name"] for r in radios} == {"emotion"}
    assert 'id="mturk_form"' in html and "/mturk/externalSubmit" in html


def test_a_custom_question_renders_its_own_field_and_options() -> None:
    spec = FormSpec(title="Sarcasm?", question="Is it <sarcastic>?", name="sarcastic", options=("yes", "no"))
    html = render_item_html({"id": "1", "text": "Great, rain again."}, spec)
    assert "Is it &lt;sarcastic&gt;?" in html and 'name="sarcastic" value="no"' in html


def test_the_html_question_is_accepted_by_mturks_parser_even_with_cdata_terminators_in_the_item() -> None:
    html = render_item_html({"id": "t9", "text": "tricky ]]> text"})
    question = parse_question(html_question(html, frame_height=450))
    assert question.html == html and question.frame_height == 450


def test_a_malformed_items_file_fails_at_start_with_its_line_number(tmp_path: Path) -> None:
    bad = tmp_path / "items.csv"
    bad.write_text("id,text\nt1,fine\nt2,too,many\n", encoding="utf-8")
    task = make_task(items_path=str(bad))
    with pytest.raises(ContextFileError, match=r"items.csv:3: expected 2 columns"):
        task.load_contexts()


async def test_three_workers_label_the_same_tweet_and_their_agreement_is_computed(
    store: Store, players: Players
) -> None:
    answers = {"W-s1": "excited", "W-s2": "excited", "W-s3": "happy"}
    done = []
    for worker_id, emotion in answers.items():
        player = await players.join("tweets", worker_id)
        turn = await player.answer(emotion, {"choice": emotion})
        assert turn["widget"] == {"kind": "choice", "options": EMOTIONS}
        assert player.messages("context")[0]["text"] == SAME_TWEET[0]["text"]
        done.append(player)
    await asyncio.gather(*(p.worker.wait_state("done") for p in done))

    records = [await record_of(store, p) for p in done]
    assert records[0] == {"item_id": "t-same", "text": SAME_TWEET[0]["text"], "answers": {"emotion": "excited"}}
    figures = agreement(records, "emotion")
    assert figures.items == 1 and figures.answers == 3
    assert figures.percent_agreement == pytest.approx(1 / 3)
    assert figures.majority == {"t-same": "excited"}


def test_the_task_carries_an_html_form_that_publishes_one_question_per_item() -> None:
    items = [{"id": "a", "text": "first <b>"}, {"id": "b", "text": "second"}]
    task = make_task(items=items, assignments=4, frame_height=500)
    form = task.html_form
    assert form is not None and form.assignments == 4 and form.fields == ["emotion"]
    task.load_contexts()  # the task's contexts and the form share one read of the source
    assert [form.item_id(i) for i in form.items()] == ["a", "b"] and task.context_for(1) == items[1]
    question = parse_question(form.question(items[0]))
    assert question.frame_height == 500 and question.html is not None and "first &lt;b&gt;" in question.html
    assert make_task(items=items, html=False).html_form is None  # the ExternalQuestion flow only


def test_items_need_unique_ids_and_forms_stay_under_ten_assignments() -> None:
    task = make_task(items=[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    with pytest.raises(ContextFileError, match="item 2: id 'a' is used twice"):
        task.load_contexts()
    with pytest.raises(ValueError, match="40%"):
        make_task(assignments=10)
