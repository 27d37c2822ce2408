"""Static form task: one item, one question with radio buttons, no chat (e.g. the emotion of a tweet).

Two ways to run it:

1. Served by Parley as an ExternalQuestion (works today): `make_task()` is an ordinary one-worker task. The
   item appears in the task pane and the worker answers with a `choice` widget.
   Saved record (one per conversation): {"item_id": str, "text": str, "answers": {field: option}}.
2. Published as an HTMLQuestion (the plain MTurk flow): `render_item_html(item, spec)` is the page for one
   item (every value HTML-escaped; the form posts to MTurk's externalSubmit) and `html_question(html)` wraps
   it for CreateHIT. Answers come back as QuestionFormAnswers XML, which `worlds.form_answers` turns into
   one record per item and worker: {"item_id", "worker_id", "assignment_id", "hit_id", "answers": {...}}.

Either way, several assignments per item give agreement figures: `worlds.agreement.agreement(records,
field)` (percent agreement and Fleiss' kappa).
Items: `worlds/data/tweets.csv` (columns id, text), another CSV (`items_path`), or an iterable (`items`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from worlds.answers import ask
from worlds.base import Caps, Message, Task, Timeouts, World, choice, csv_contexts

TWEETS = Path(__file__).parent / "data" / "tweets.csv"
EMOTIONS = ["happy", "angry", "excited", "scared", "annoyed", "upset"]
ITEM_FIELD = "item_id"
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
) -> Task:
    spec = FormSpec(title=title, question=question, name=field_name, options=tuple(options or EMOTIONS))

    class World(StaticFormWorld):
        pass

    World.spec, World.turn_timeout = spec, turn_timeout
    return Task(
        name="static_form",
        title=spec.title,
        description=f"Read one short text and answer one question: {spec.question}",
        world=World,
        roles=["Annotator"],
        contexts=items if items is not None else csv_contexts(items_path or TWEETS),
        reward=0.05,
        keywords=["labeling", "emotion", "text"],
        timeouts=Timeouts(turn=turn_timeout, waiting=60.0),
        caps=Caps(max_conversations=500, max_waiting=500, per_worker_total=200,
                  target_conversations=target_conversations),
    )
