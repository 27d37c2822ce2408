"""Picture pick: one worker describes a picture the other cannot see; the other picks it out of four.

Flow: the Describer sees the target picture in the task pane; the Guesser sees four pictures labelled A-D
(one of them the target). The Describer writes one description, which the Guesser reads in the chat; the
Guesser picks a label; both are told whether it was right. The pictures are the task's assets
(`worlds/data/pictures/`, simple shapes), served at /task/<run>/assets/; each conversation's pictures
come from one line of `worlds/data/pictures.jsonl` ({"target": file, "choices": [four files]}).
Saved record (one per conversation): {"target": str, "choices": [str], "description": str,
"picked": "A".."D", "picked_file": str, "correct": bool}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worlds.base import Caps, Message, Task, Timeouts, World, choice, image, jsonl_contexts, text_input

DATA = Path(__file__).parent / "data"
PICTURES = DATA / "pictures"
CONTEXTS = DATA / "pictures.jsonl"
LABELS = ["A", "B", "C", "D"]


def choices_message(context: dict[str, Any], text: str) -> Message:
    """The four pictures, labelled A-D (the captions never name the target)."""
    images = [image(file, caption=f"Picture {label}", alt=f"Picture {label}")
              for label, file in zip(LABELS, context["choices"], strict=True)]
    return Message(kind="context", sender="Task", text=text, data={"images": images})


class PicturePickWorld(World):
    turn_timeout: float = 180.0

    async def run(self) -> None:
        describer, guesser = self.agent("Describer"), self.agent("Guesser")
        context: dict[str, Any] = self.context
        await describer.observe(Message(
            kind="context", sender="Task",
            text="Your partner sees four pictures. Describe this one so they can pick it out.",
            data={"images": [image(context["target"], caption="Your picture", alt="The picture to describe")]},
        ))
        await guesser.observe(choices_message(
            context, "Your partner sees one of these four pictures and will describe it. Then pick it."
        ))
        description = await describer.act(
            timeout=self.turn_timeout, prompt="Describe your picture (colour, shape...).",
            widget=text_input("Describe the picture...", max_length=500),
        )
        await guesser.observe(description)
        picked = await guesser.act(timeout=self.turn_timeout, prompt="Which picture is it?", widget=choice(LABELS))
        label = str(picked.data.get("choice", picked.text))
        picked_file = context["choices"][LABELS.index(label)] if label in LABELS else ""
        correct = picked_file == context["target"]
        right = LABELS[context["choices"].index(context["target"])]
        verdict = "Correct!" if correct else f"Not quite: it was picture {right}."
        await self.broadcast(Message(kind="system", sender="Task", text=f"The guess was {label}. {verdict}"))
        await self.save({
            "target": context["target"], "choices": context["choices"], "description": description.text,
            "picked": label, "picked_file": picked_file, "correct": correct,
        })


def preview(context: Any) -> Message | None:
    """A previewing worker sees what the Guesser will: four pictures (which one is the target is not shown)."""
    if not context:
        return None
    return choices_message(context, "An example: one worker describes one of four pictures, the other picks it.")


def make_task(contexts_path: str | None = None, turn_timeout: float = 180.0, waiting_timeout: float = 300.0) -> Task:
    class World(PicturePickWorld):
        pass

    World.turn_timeout = turn_timeout
    return Task(
        name="picture_pick",
        title="Describe a picture, or pick the one described",
        description=(
            "You will be paired with another worker. One of you describes a picture in a sentence; the other "
            "picks it out of four. Takes about two minutes."
        ),
        world=World,
        replayable=True,
        roles=["Describer", "Guesser"],
        contexts=jsonl_contexts(contexts_path or CONTEXTS),
        assets=PICTURES,
        preview=preview,
        reward=0.30,
        keywords=["pictures", "description", "game"],
        timeouts=Timeouts(turn=turn_timeout, waiting=waiting_timeout),
        caps=Caps(max_conversations=50, max_waiting=100, target_conversations=200),
    )
