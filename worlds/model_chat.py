"""Model chat: one worker chats with a bot for N turns, annotating each bot reply, then rates the bot.

Onboarding (a real screen): the worker annotates the bot messages of a sample chat with the same labels
as the task; a message counts as right when the ticked labels equal the sample's gold labels, and the
worker passes when the share of right messages reaches `pass_threshold` (default 0.75: 3 of the 4). A failed worker is
refused by the run from then on (`Caps.onboarding_attempts`, default one attempt).

Flow: the task pane explains the labels. For each of `turns` turns the worker writes a message, the bot
(role "Bot") answers, and the worker ticks the labels that apply to that bot message (a `checkboxes`
turn whose widget carries the bot message's `message_id`, so the page shows the boxes under that message).
A bot failure (an LLM timeout or error) shows a notice, is kept in the dialogue with its error, and is not
annotated. Finally the worker rates the bot 1-5 and gives a reason (one `form`).

Saved record (updated after every turn):
    {"bot": str, "labels": [str],
     "dialogue": [{"id": str, "speaker": str, "text": str, "error": {...} (bot failures only)}],
     "annotations": {bot_message_id: [ticked labels]},
     "rating": int (1-5) | None, "reason": str | None}
Onboarding record: {"score": float, "threshold": float, "passed": bool,
                    "answers": [{"text": str, "ticked": [str], "gold": [str]}]}
Options: `turns`, `labels`, `bot` / `bot_options` (see `worlds.bots.make_bot`), `onboarding_path`,
`pass_threshold`, `onboarding` (False to skip the screen).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worlds.answers import ask
from worlds.base import (
    Agent,
    Caps,
    Message,
    OnboardingWorld,
    Task,
    Timeouts,
    World,
    checkboxes,
    form,
    rating,
    text_input,
)
from worlds.bots import is_error, make_bot

LABELS = ["Engaging", "Rude", "Contradictory", "Off-topic"]
ONBOARDING_SAMPLE = Path(__file__).parent / "data" / "model_chat_onboarding.json"
FINAL = form([
    ("rating", "Overall, how good a conversation partner was the bot?", rating(1, 5, ("Very poor", "Excellent"))),
    ("reason", "Why? One or two sentences.", text_input("Your reason...", max_length=1000)),
])


def load_sample(path: str | Path, labels: list[str]) -> list[dict[str, Any]]:
    """The onboarding sample chat: [{"speaker", "text", "gold"?: [labels]}]; fails at start if unusable."""
    try:
        dialogue = json.loads(Path(path).read_text(encoding="utf-8"))["dialogue"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not an onboarding sample ({exc})") from exc
    gold = [set(turn["gold"]) for turn in dialogue if "gold" in turn]
    if not gold:
        raise ValueError(f"{path}: the sample has no gold-annotated message")
    unknown = set().union(*gold) - set(labels)
    if unknown:
        raise ValueError(f"{path}: gold labels {sorted(unknown)} are not among the task's labels {labels}")
    return list(dialogue)


def score_annotations(answers: list[tuple[list[str], list[str]]]) -> float:
    """The share of sample messages the worker labelled exactly as gold (same set of labels)."""
    return sum(set(ticked) == set(gold) for ticked, gold in answers) / len(answers) if answers else 0.0


class AnnotationScreen(OnboardingWorld):
    labels = LABELS
    sample: list[dict[str, Any]] = []
    threshold = 0.75
    timeout = 300.0

    async def run(self) -> None:
        worker = self.worker
        await worker.observe(Message(
            kind="context", sender="Task",
            text=("Qualification: below is a sample chat between a user and a bot. After each bot message, "
                  f"tick the labels that apply to it ({', '.join(self.labels)}), or none."),
            data={"labels": self.labels},
        ))
        answers: list[tuple[list[str], list[str]]] = []
        log = []
        for turn in self.sample:
            await worker.observe(Message(sender=f"Sample {turn['speaker']}", text=turn["text"]))
            if "gold" not in turn:
                continue
            ticked, _ = await ask(
                worker, timeout=self.timeout, widget=checkboxes(self.labels),
                prompt=f"Which labels apply to the bot's message \u201c{turn['text']}\u201d?",
            )
            answers.append((ticked, list(turn["gold"])))
            log.append({"text": turn["text"], "ticked": ticked, "gold": list(turn["gold"])})
        score = score_annotations(answers)
        self.passed = score >= self.threshold
        await self.save({"score": score, "threshold": self.threshold, "passed": self.passed, "answers": log})


class ModelChatWorld(World):
    turns_total = 5
    labels = LABELS
    turn_timeout = 300.0
    bot_timeout = 120.0
    bot_name = "retrieval"

    def __init__(self, agents: list[Agent], context: Any = None, *, saver: Any = None) -> None:
        super().__init__(agents, context, saver=saver)
        self.dialogue: list[dict[str, Any]] = []
        self.annotations: dict[str, list[str]] = {}
        self.final: dict[str, Any] = {"rating": None, "reason": None}

    async def run(self) -> None:
        worker, bot = self.agent("Worker"), self.agent("Bot")
        await worker.observe(Message(
            kind="context", sender="Task",
            text=(f"Chat with the bot for {self.turns_total} turns. After each bot reply, tick the labels that "
                  f"apply to it: {', '.join(self.labels)} (or none). At the end, rate the bot."),
            data={"labels": self.labels, "turns": self.turns_total},
        ))
        for n in range(1, self.turns_total + 1):
            said = await worker.act(
                timeout=self.turn_timeout, prompt=f"Your message ({n} of {self.turns_total}).", widget=text_input(),
            )
            self._keep(said)
            await bot.observe(said)
            reply = await bot.act(timeout=self.bot_timeout)
            self._keep(reply)
            await worker.observe(reply)
            if not is_error(reply) and reply.id is not None:
                ticked, _ = await ask(
                    worker, timeout=self.turn_timeout, widget=checkboxes(self.labels, about=reply.id),
                    prompt="Which labels apply to the bot's last message? Tick none if none apply.",
                )
                self.annotations[reply.id] = ticked
            await self._save()
        self.final, _ = await ask(worker, timeout=self.turn_timeout, widget=FINAL, prompt="Last step: rate the bot.")
        await self._save()

    def _keep(self, message: Message) -> None:
        entry: dict[str, Any] = {"id": message.id, "speaker": message.sender, "text": message.text}
        if is_error(message):
            entry["error"] = message.data["error"]
        self.dialogue.append(entry)

    async def _save(self) -> None:
        await self.save({
            "bot": self.bot_name, "labels": self.labels, "dialogue": self.dialogue,
            "annotations": self.annotations, "rating": self.final["rating"], "reason": self.final["reason"],
        })


def make_task(
    turns: int = 5,
    labels: list[str] | None = None,
    bot: str = "retrieval",
    bot_options: dict[str, Any] | None = None,
    onboarding: bool = True,
    onboarding_path: str | None = None,
    pass_threshold: float = 0.75,
    turn_timeout: float = 300.0,
    bot_timeout: float = 120.0,
    target_conversations: int = 1000,
) -> Task:
    labels = list(labels or LABELS)
    if turns < 1 or not labels or not 0.0 <= pass_threshold <= 1.0:
        raise ValueError("model chat needs turns >= 1, at least one label and 0 <= pass_threshold <= 1")

    screening = {
        "labels": labels, "threshold": pass_threshold, "timeout": turn_timeout,
        "sample": load_sample(onboarding_path or ONBOARDING_SAMPLE, labels),
    } if onboarding else {}
    return Task(
        name="model_chat",
        title="Chat with a chatbot and label its replies",
        description=(
            f"Chat with a chatbot for {turns} turns. After each of its replies, tick the labels that apply. "
            "Finally rate the chatbot." + (" A short qualification comes first." if onboarding else "")
        ),
        world=ModelChatWorld,
        replayable=True,
        world_options={
            "turns_total": turns, "labels": labels, "turn_timeout": turn_timeout, "bot_timeout": bot_timeout,
            "bot_name": bot,
        },
        roles=["Worker"],
        bots={"Bot": make_bot(bot, act_timeout=bot_timeout, **(bot_options or {}))},
        onboarding=AnnotationScreen if onboarding else None,
        onboarding_options=screening,
        reward=0.8,
        keywords=["chatbot", "conversation", "annotation"],
        timeouts=Timeouts(turn=turn_timeout, waiting=60.0),
        caps=Caps(
            max_conversations=200, max_waiting=400, per_worker_total=10, target_conversations=target_conversations
        ),
    )
