"""Static form task: one item, one question with radio buttons, no chat (e.g. the emotion of a tweet).

Two ways to run it:

1. Served by Parley as an ExternalQuestion (works today): `make_task()` is an ordinary one-worker task. The
   item appears in the task pane and the worker answers with a `choice` widget.
   Saved record (one per conversation): {"item_id": str, "text": str, "answers": {field: option}}.
2. Published as HTMLQuestions (the plain MTurk flow; what `parley run worlds.static_form` does): the task
   carries an `HtmlForm` (`task.html_form`), so the HIT manager publishes one HIT per item with
   MaxAssignments = `assignments`. `render_item_html(item, spec)` is the page for one item (every value
   HTML-escaped; the form posts to MTurk's externalSubmit) and `html_question(html)` wraps it for CreateHIT.
   Answers come back as QuestionFormAnswers XML, which `worlds.form_answers` turns into one record per item
   and worker: {"item_id", "worker_id", "assignment_id", "hit_id", "answers": {...}}.
   `make_task(html=False)` (or `parley run ... --question external`) keeps the ExternalQuestion flow.

Either way, several assignments per item give agreement figures: `worlds.agreement.agreement(records,
field)` (percent agreement and Fleiss' kappa).
Items: `worlds/data/tweets.csv` (columns id, text), another CSV (`items_path`), or an iterable (`items`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from worlds import form_answers
from worlds.agreement import agreement
from worlds.answers import ask
from worlds.base import Caps, ContextFileError, Message, Task, Timeouts, World, choice, csv_contexts

TWEETS = Path(__file__).parent / "data" / "tweets.csv"
EMOTIONS = ["happy", "angry", "excited", "scared", "annoyed", "upset"]
ITEM_FIELD = form_answers.ITEM_FIELD
MAX_ASSIGNMENTS = 9  # MTurk charges 40% instead of 20% on HITs of 10 or more assignments
HTML_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"


@dataclass(frozen=True)
class FormSpec:
    """The one question each item asks: the answer's field `name`, the question and its options (radio buttons)."""

    title: str = "What emotion does this tweet express?"
    question: str = "Is this tweet happy, angry, excited, scared, annoyed or upset?"
    name: str = "emotion"
    options: tuple[str, ...] = tuple(EMOTIONS)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40em; margin: 1em auto; padding: 0 1em; }}
.item {{ padding: .8em 1em; border: 1px solid #ccc; border-radius: 6px; background: #fafafa; white-space: pre-wrap; }}
fieldset {{ border: none; padding: 0; margin: 1em 0; }} label {{ display: block; margin: .35em 0; }}
</style></head><body>
<h1>{title}</h1>
<blockquote class="item" id="item-text">{text}</blockquote>
<form name="mturk_form" id="mturk_form" method="post" action="https://www.mturk.com/mturk/externalSubmit">
<input type="hidden" name="assignmentId" id="assignmentId" value="">
<input type="hidden" name="{item_field}" value="{item_id}">
<fieldset><legend>{question}</legend>
{options}
</fieldset>
<button type="submit" id="submitButton">Submit</button>
</form>
<script>
(function () {{
  var params = new URLSearchParams(window.location.search);
  var assignmentId = params.get("assignmentId") || "ASSIGNMENT_ID_NOT_AVAILABLE";
  var submitTo = params.get("turkSubmitTo");
  var form = document.getElementById("mturk_form");
  document.getElementById("assignmentId").value = assignmentId;
  if (submitTo) form.action = submitTo.replace(/\\/$/, "") + "/mturk/externalSubmit";
  if (assignmentId === "ASSIGNMENT_ID_NOT_AVAILABLE") document.getElementById("submitButton").disabled = true;
}})();
</script>
</body></html>
"""


def render_item_html(item: dict[str, Any], spec: FormSpec | None = None) -> str:
    """The HTMLQuestion page for one item ({"id", "text"}): every item and spec value is HTML-escaped."""
    spec = spec or FormSpec()
    options = "\n".join(
        f'<label><input type="radio" name="{escape(spec.name)}" value="{escape(o)}" required> {escape(o)}</label>'
        for o in spec.options
    )
    return PAGE.format(
        title=escape(spec.title), text=escape(str(item["text"])), item_field=ITEM_FIELD,
        item_id=escape(str(item["id"])), question=escape(spec.question), options=options,
    )


def html_question(html: str, frame_height: int = 600) -> str:
    """The Question XML for CreateHIT. A "]]>" inside the page is split so the CDATA section stays intact."""
    body = html.replace("]]>", "]]]]><![CDATA[>")
    return (
        f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}"><HTMLContent><![CDATA[{body}]]></HTMLContent>'
        f"<FrameHeight>{int(frame_height)}</FrameHeight></HTMLQuestion>"
    )


class Items:
    """An item source read once, when first iterated (so a bad file fails at start, naming its line), and
    shared by the task's contexts and its HTML form. Item ids must be present and unique: one HIT per item."""

    def __init__(self, source: Iterable[dict[str, Any]]) -> None:
        self._source = source
        self._items: list[dict[str, Any]] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._items is None:
            items = list(self._source)
            seen: set[str] = set()
            for number, item in enumerate(items, start=1):
                if not str(item.get("id", "")) or "text" not in item:
                    raise ContextFileError(f"item {number} needs an `id` and a `text` (got {sorted(item)})")
                if str(item["id"]) in seen:
                    raise ContextFileError(f"item {number}: id {item['id']!r} is used twice; give each item its own")
                seen.add(str(item["id"]))
            self._items = items
        return iter(self._items)


@dataclass
class HtmlForm:
    """How the task is published as HTMLQuestions: one HIT per item, `assignments` workers answer each.

    The HIT manager uses it through these methods only (it knows no task module): `items()`, `item_id()`,
    `question()` (the HTMLQuestion XML), `record()` (an assignment's answers) and `agreement()`.
    """

    spec: FormSpec
    source: Iterable[dict[str, Any]]
    assignments: int = 3
    frame_height: int = 600

    def __post_init__(self) -> None:
        if not 1 <= self.assignments <= MAX_ASSIGNMENTS:
            raise ValueError(
                f"assignments per item must be 1..{MAX_ASSIGNMENTS} (got {self.assignments}): MTurk's fee is 40% "
                "instead of 20% on HITs of 10 or more assignments"
            )

    @property
    def fields(self) -> list[str]:
        return [self.spec.name]

    def items(self) -> list[dict[str, Any]]:
        return list(self.source)

    def item_id(self, item: Mapping[str, Any]) -> str:
        return str(item["id"])

    def question(self, item: Mapping[str, Any]) -> str:
        return html_question(render_item_html(dict(item), self.spec), self.frame_height)

    def record(self, assignment: Mapping[str, Any], item_id: str | None = None) -> dict[str, Any]:
        """{"item_id", "worker_id", "assignment_id", "hit_id", "answers"}; ValueError when unreadable."""
        return form_answers.record_from_assignment(assignment, item_id=item_id)

    def agreement(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Per field: percent agreement, Fleiss' kappa, and per item its answers, agreement and majority."""
        kept = list(records)
        report = []
        for name in self.fields:
            figures = agreement(kept, name)
            report.append({"field": name, **asdict(figures)})
        return report


@dataclass
class FormTask(Task):
    """A Task that may also be published as HTMLQuestions (`html_form`); None: ExternalQuestion only."""

    html_form: HtmlForm | None = field(default=None)


class StaticFormWorld(World):
    spec = FormSpec()
    turn_timeout = 300.0

    async def run(self) -> None:
        worker = self.agent("Annotator")
        item = self.context or {"id": "", "text": ""}
        await worker.observe(Message(kind="context", sender="Task", text=str(item["text"]),
                                     data={"item_id": str(item["id"]), "title": self.spec.title}))
        answer, _ = await ask(worker, timeout=self.turn_timeout, prompt=self.spec.question,
                              widget=choice(list(self.spec.options)))
        await self.save({"item_id": str(item["id"]), "text": str(item["text"]), "answers": {self.spec.name: answer}})


def make_task(
    items_path: str | None = None,
    items: Iterable[dict[str, Any]] | None = None,
    title: str = FormSpec.title,
    question: str = FormSpec.question,
    field_name: str = FormSpec.name,
    options: list[str] | None = None,
    turn_timeout: float = 300.0,
    target_conversations: int = 1000,
    html: bool = True,
    assignments: int = 3,
    frame_height: int = 600,
) -> FormTask:
    """`html=True`: `parley run` publishes one HTMLQuestion HIT per item with `assignments` workers each;
    `html=False`: the task is only the ExternalQuestion world (one worker, one item per HIT)."""
    spec = FormSpec(title=title, question=question, name=field_name, options=tuple(options or EMOTIONS))
    source = Items(items if items is not None else csv_contexts(items_path or TWEETS))
    html_form = HtmlForm(spec, source, assignments=assignments, frame_height=frame_height) if html else None

    return FormTask(
        name="static_form",
        title=spec.title,
        description=f"Read one short text and answer one question: {spec.question}",
        world=StaticFormWorld,
        replayable=True,
        world_options={"spec": spec, "turn_timeout": turn_timeout},
        roles=["Annotator"],
        contexts=source,
        reward=0.05,
        keywords=["labeling", "emotion", "text"],
        timeouts=Timeouts(turn=turn_timeout, waiting=60.0),
        caps=Caps(max_conversations=500, max_waiting=500, per_worker_total=200,
                  target_conversations=target_conversations),
        html_form=html_form,
    )
