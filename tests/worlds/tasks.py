"""The task modules under test, with short timeouts (loaded as "tests.worlds.tasks:<name>").

`LLM["base_url"]` is set by the fake LLM fixture before the server starts.
"""

from __future__ import annotations

from typing import Any

from worlds import model_chat, model_evaluator, multi_agent_dialog, pairwise_eval, role_survey, static_form
from worlds.base import Task, Timeouts

FAST = Timeouts(turn=5.0, waiting=5.0, onboarding=8.0, reconnect_grace=2.0, submission=60.0)
LLM: dict[str, str] = {"base_url": "http://127.0.0.1:9/v1"}
SAME_TWEET = [{"id": "t-same", "text": "Won the lottery?! No way!!! <3"}]


def fast(task: Task) -> Task:
    task.timeouts = FAST
    return task


def evaluator() -> Task:
    return fast(model_evaluator.make_task(bot="echo", turn_timeout=5.0, bot_timeout=5.0))


def evaluator_stalling_llm() -> Task:
    options = {"base_url": LLM["base_url"], "model": "stall", "timeout": 0.5}
    return fast(model_evaluator.make_task(bot="llm", bot_options=options, turn_timeout=5.0, bot_timeout=5.0))


class ParlAIStyleBot:
    """A ParlAI-style agent: dict observations, dict replies, no Parley imports."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def observe(self, observation: dict[str, Any]) -> None:
        self.seen.append(observation)

    def act(self) -> dict[str, Any]:
        last = self.seen[-1] if self.seen else {"id": "nobody", "text": ""}
        return {"text": f"{last['id']} said {last['text']!r}", "episode_done": False, "heard": len(self.seen)}


def multi() -> Task:
    task = fast(multi_agent_dialog.make_task(humans=2, bots=1, bot="echo", turn_timeout=5.0, bot_timeout=5.0))
    task.bots = {"Bot 1": lambda role: ParlAIStyleBot()}
    return task


def chat() -> Task:
    return fast(model_chat.make_task(turns=2, bot="retrieval", turn_timeout=5.0, bot_timeout=5.0))


def chat_llm() -> Task:
    options = {"base_url": LLM["base_url"], "model": "any", "stream": True, "timeout": 3.0}
    return fast(model_chat.make_task(
        turns=2, bot="llm", bot_options=options, onboarding=False, turn_timeout=5.0, bot_timeout=5.0,
    ))


def pairwise() -> Task:
    return fast(pairwise_eval.make_task(pairs_per_hit=2, gold_per_hit=1, turn_timeout=5.0))


def survey() -> Task:
    return fast(role_survey.make_task(turns_each=1, turn_timeout=5.0, waiting_timeout=5.0))


def tweets() -> Task:
    return fast(static_form.make_task(items=SAME_TWEET, turn_timeout=5.0))


RUNS = {name: f"tests.worlds.tasks:{name}" for name in (
    "evaluator", "evaluator_stalling_llm", "multi", "chat", "chat_llm", "pairwise", "tweets", "survey",
)}
