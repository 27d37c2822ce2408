"""Support role-play with a survey per role: each role answers its own form, shipped as a page fragment.

Flow: two workers are paired as "Customer" and "Support". Both see the scenario in the task pane; the
customer starts and turns alternate for `turns_each` messages each. Then both answer at the same time,
each in the form of their role: the task declares `ui={"Customer": ..., "Support": ...}` (HTML fragments
in `worlds/data/`, the customer's with a stylesheet beside it) and asks with `fragment(role)`.

Saved record:
    {"scenario": str, "dialogue": [{"speaker": str, "text": str}],
     "surveys": {"Customer": {"satisfaction": "1".."5", "did_well": [str], "again": "yes"|"no", "comment": str},
                 "Support": {"clear": "yes"|"partly"|"no", "offered": [str], "difficulty": int, "notes": str}}}
Options: `turns_each`, `scenarios`, `turn_timeout`, `waiting_timeout`, `target_conversations`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from worlds.answers import ask
from worlds.base import Caps, Message, Task, Timeouts, World, fragment, text_input

DATA = Path(__file__).parent / "data"
UI = {"Customer": DATA / "role_survey_customer.html", "Support": DATA / "role_survey_support.html"}
REQUIRED = {"Customer": ["satisfaction", "again"], "Support": ["clear", "difficulty"]}
SCENARIOS = [
    "The customer's new kettle arrived with a cracked lid.",
    "The customer was charged twice for one concert ticket.",
    "The customer's parcel shows as delivered, but it never arrived.",
]


class RoleSurveyWorld(World):
    turns_each = 2
    turn_timeout = 180.0

    def __init__(self, agents: Any, context: Any = None, *, saver: Any = None) -> None:
        super().__init__(agents, context, saver=saver)
        self.dialogue: list[dict[str, str]] = []

    def episode_done(self) -> bool:
        return len(self.dialogue) >= self.turns_each * 2

    async def parley(self) -> None:
        speaker = self.agent("Customer" if len(self.dialogue) % 2 == 0 else "Support")
        listener = self.agent("Support" if speaker.role == "Customer" else "Customer")
        left = self.turns_each - len(self.dialogue) // 2
        said = await speaker.act(timeout=self.turn_timeout, prompt=f"Your turn ({left} left).", widget=text_input())
        self.dialogue.append({"speaker": speaker.role, "text": said.text})
        await listener.observe(said)

    async def run(self) -> None:
        for agent in self.agents:
            await agent.observe(Message(
                kind="context", sender="Task",
                text=f"Scenario: {self.context}\nYou are the {agent.role.lower()}. The customer starts.",
            ))
        await super().run()
        answers = await asyncio.gather(*(
            ask(agent, timeout=self.turn_timeout, prompt="Last step: your survey.",
                widget=fragment(agent.role, fields=REQUIRED[agent.role]))
            for agent in self.agents
        ))
        surveys = {agent.role: value for agent, (value, _) in zip(self.agents, answers, strict=True)}
        await self.save({"scenario": self.context, "dialogue": self.dialogue, "surveys": surveys})


def make_task(
    turns_each: int = 2,
    scenarios: Iterable[str] | None = None,
    turn_timeout: float = 180.0,
    waiting_timeout: float = 300.0,
    target_conversations: int = 500,
) -> Task:
    if turns_each < 1:
        raise ValueError("role survey needs turns_each >= 1")

    return Task(
        name="role_survey",
        title="Role-play a customer support chat, then answer a short survey",
        description=(
            f"You will be paired with another worker as a customer or a support agent and chat about a "
            f"problem, {turns_each} messages each, then answer a few questions about it."
        ),
        world=RoleSurveyWorld,
        replayable=True,
        world_options={"turns_each": turns_each, "turn_timeout": turn_timeout},
        roles=["Customer", "Support"],
        ui=UI,
        contexts=list(scenarios) if scenarios is not None else SCENARIOS,
        reward=0.5,
        keywords=["chat", "role-play", "survey"],
        timeouts=Timeouts(turn=turn_timeout, waiting=waiting_timeout),
        caps=Caps(max_conversations=100, max_waiting=200, target_conversations=target_conversations),
    )
