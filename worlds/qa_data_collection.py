"""QA data collection: the worker reads a paragraph, writes a question about it, then the answer.

Flow: the paragraph appears in the task pane; the worker is asked for a question, then for its answer.
Saved record (one per conversation): {"context": {...the context item...}, "question": str, "answer": str}.
Contexts: `worlds/data/qa_paragraphs.jsonl` (one {"title", "text"} object per line), another JSONL file
through `make_task(contexts_path=...)`, or any iterable through `make_task(contexts=...)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from worlds.base import Caps, Message, Task, Timeouts, World, jsonl_contexts, text_input

SAMPLE = Path(__file__).parent / "data" / "qa_paragraphs.jsonl"


class QADataCollectionWorld(World):
    async def run(self) -> None:
        worker = self.agents[0]
        paragraph = self.context or {"title": "", "text": ""}
        await worker.observe(Message(
            kind="context", sender="Task", text=paragraph["text"], data={"title": paragraph.get("title", "")},
        ))
        question = await worker.act(
            timeout=self.timeout,
            prompt="Write a question that the paragraph answers.",
            widget=text_input("Your question..."),
        )
        await worker.observe(Message(kind="system", sender="Task", text="Thanks! Now write the answer."))
        answer = await worker.act(
            timeout=self.timeout,
            prompt="Write the answer to your question, using the paragraph.",
            widget=text_input("The answer..."),
        )
        await self.save({"context": paragraph, "question": question.text, "answer": answer.text})
        await worker.observe(Message(kind="system", sender="Task", text="All done. Thank you!"))

    timeout: float = 300.0


def preview(context: Any) -> Message | None:
    """A previewing worker reads the paragraph they would work on (an example: the first one)."""
    if not context:
        return None
    return Message(kind="context", sender="Task", text=context["text"], data={"title": context.get("title", "")})


def make_task(
    contexts_path: str | None = None,
    contexts: Iterable[Any] | None = None,
    turn_timeout: float = 300.0,
    target_conversations: int = 1000,
) -> Task:
    source = contexts if contexts is not None else jsonl_contexts(contexts_path or SAMPLE)

    return Task(
        name="qa_data_collection",
        title="Write a question and its answer about a paragraph",
        description=(
            "Read a short paragraph. Write one question that the paragraph answers, then write the answer. "
            "Takes about two minutes."
        ),
        world=QADataCollectionWorld,
        replayable=True,
        world_options={"timeout": turn_timeout},
        roles=["Writer"],
        contexts=source,
        preview=preview,
        reward=0.35,
        keywords=["question answering", "writing"],
        timeouts=Timeouts(turn=turn_timeout, waiting=60.0),
        caps=Caps(
            max_conversations=200, max_waiting=400, per_worker_total=20, target_conversations=target_conversations
        ),
    )
