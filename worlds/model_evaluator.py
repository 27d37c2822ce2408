"""Model evaluator: a bot answers a dialogue context; the worker rates the reply from 0 to 10.

Onboarding: the worker confirms they are present (one click, bounded by the onboarding timeout); a worker
who does not answer in time is released before any model call is spent on them.

Flow: the dialogue context appears in the task pane and is given to the bot (role "Model") turn by turn;
the bot's reply is shown in the chat; the worker rates it with a 0-10 rating scale. If the bot could not
answer (an LLM timeout or error), the worker sees the notice and the record keeps the error, with no rating.

Saved record (one per conversation):
    {"context": {"id": str, "dialogue": [{"speaker", "text"}...]},
     "response": {"id": str, "text": str, "data": {...}} | None,
     "rating": int (0-10) | None,
     "error": {"type", "message", ...} | None,
     "bot": str}
Contexts: `worlds/data/eval_contexts.jsonl`, another JSONL through `make_task(contexts_path=...)`, or any
iterable of such dicts through `make_task(contexts=...)`.
Options: `bot` ("retrieval", "echo", "llm") and `bot_options` (see `worlds.bots.make_bot`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from worlds.answers import ask
from worlds.base import Caps, Message, OnboardingWorld, Task, Timeouts, World, choice, jsonl_contexts, rating
from worlds.bots import is_error, make_bot

SAMPLE = Path(__file__).parent / "data" / "eval_contexts.jsonl"
PRESENT = "I am here and ready"
SCALE = rating(0, 10, ("Terrible", "Excellent"))


def render_dialogue(dialogue: list[dict[str, Any]]) -> str:
    return "\n".join(f"{turn['speaker']}: {turn['text']}" for turn in dialogue)


class PresenceCheck(OnboardingWorld):
    timeout = 120.0

    async def run(self) -> None:
        await self.worker.observe(Message(
            kind="system", sender="Task",
            text="You will read a short conversation and rate how good the model's next message is.",
        ))
        reply = await self.worker.act(
            timeout=self.timeout, prompt="Please confirm you are here to start.", widget=choice([PRESENT]),
        )
        self.passed = reply.data.get("choice") == PRESENT
        await self.save({"present": self.passed})


class ModelEvaluatorWorld(World):
    turn_timeout = 300.0
    bot_timeout = 120.0
    bot_name = "retrieval"

    async def run(self) -> None:
        worker, model = self.agent("Rater"), self.agent("Model")
        context = self.context or {"id": "", "dialogue": []}
        await worker.observe(Message(
            kind="context", sender="Task", text=render_dialogue(context["dialogue"]),
            data={"context_id": context.get("id", "")},
        ))
        for turn in context["dialogue"]:
            await model.observe(Message(text=turn["text"], sender=turn["speaker"]))
        reply = await model.act(timeout=self.bot_timeout)
        await worker.observe(reply)
        record: dict[str, Any] = {"context": context, "response": None, "rating": None, "error": None,
                                  "bot": self.bot_name}
        if is_error(reply):
            record["error"] = reply.data["error"]
            await self.save(record)
            return
        record["response"] = {"id": reply.id, "text": reply.text, "data": reply.data}
        score, _ = await ask(
            worker, timeout=self.turn_timeout, widget=SCALE,
            prompt="How good is the model's reply as the next message of this conversation? (0-10)",
        )
        record["rating"] = score
        await self.save(record)
        await worker.observe(Message(kind="system", sender="Task", text="Thank you! Your rating is saved."))


def make_task(
    contexts_path: str | None = None,
    contexts: Iterable[Any] | None = None,
    bot: str = "retrieval",
    bot_options: dict[str, Any] | None = None,
    turn_timeout: float = 300.0,
    bot_timeout: float = 120.0,
    target_conversations: int = 1000,
) -> Task:
    source = contexts if contexts is not None else jsonl_contexts(contexts_path or SAMPLE)

    return Task(
        name="model_evaluator",
        title="Rate a chatbot's reply",
        description="Read a short conversation and rate the chatbot's next message from 0 to 10. About one minute.",
        world=ModelEvaluatorWorld,
        replayable=True,
        world_options={"turn_timeout": turn_timeout, "bot_timeout": bot_timeout, "bot_name": bot},
        roles=["Rater"],
        bots={"Model": make_bot(bot, act_timeout=bot_timeout, **(bot_options or {}))},
        onboarding=PresenceCheck,
        onboarding_options={"timeout": turn_timeout},
        contexts=source,
        reward=0.15,
        keywords=["chatbot", "rating", "evaluation"],
        timeouts=Timeouts(turn=turn_timeout, waiting=60.0),
        caps=Caps(
            max_conversations=200, max_waiting=400, per_worker_total=50, target_conversations=target_conversations
        ),
    )
