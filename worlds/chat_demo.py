"""Two-person chat: two workers paired in the waiting room take turns for N messages each, then a survey.

Flow: both see the topic in the task pane; Speaker 1 starts; turns alternate; each message is shown to the
partner. After `turns` messages each, both answer a short survey at the same time.
Saved record: {"topic": str, "dialogue": [{"speaker", "text"}...], "survey": {role: {"enjoyed": int,
"partner_engaged": "Yes"|"Somewhat"|"No", "comment": str}}}.
"""

from __future__ import annotations

import asyncio
from typing import Any

from worlds.base import Caps, Message, Task, Timeouts, World, choice, form, rating, text_input

TOPICS = [
    "Your favourite place to spend a free afternoon.",
    "A skill you would like to learn this year, and why.",
    "The best meal you have cooked or eaten recently.",
    "A book, film or series you would recommend to a friend.",
]

SURVEY = form([
    ("enjoyed", "How much did you enjoy this conversation?", rating(1, 5, ("Not at all", "A lot"))),
    ("partner_engaged", "Was your partner engaged?", choice(["Yes", "Somewhat", "No"])),
    ("comment", "Anything else? (optional)", text_input("Optional comment", max_length=500)),
])


class ChatDemoWorld(World):
    turns_each = 3
    turn_timeout = 180.0

    def __init__(self, agents: Any, context: Any = None, *, saver: Any = None) -> None:
        super().__init__(agents, context, saver=saver)
        self.dialogue: list[dict[str, str]] = []

    def episode_done(self) -> bool:
        return len(self.dialogue) >= self.turns_each * len(self.agents)

    async def parley(self) -> None:
        speaker = self.agents[len(self.dialogue) % len(self.agents)]
        left = self.turns_each - len(self.dialogue) // len(self.agents)
        message = await speaker.act(
            timeout=self.turn_timeout, prompt=f"Your turn ({left} left).", widget=text_input()
        )
        self.dialogue.append({"speaker": speaker.role, "text": message.text})
        await self.broadcast(message, exclude=speaker)

    async def run(self) -> None:
        await self.broadcast(Message(kind="context", sender="Task", text=f"Chat about: {self.context}"))
        await super().run()
        answers = await asyncio.gather(*(
            agent.act(timeout=self.turn_timeout, prompt="Last step: a short survey.", widget=SURVEY)
            for agent in self.agents
        ))
        survey = {agent.role: answer.data.get("form", {}) for agent, answer in zip(self.agents, answers, strict=True)}
        await self.save({"topic": self.context, "dialogue": self.dialogue, "survey": survey})


def make_task(turns_each: int = 3, turn_timeout: float = 180.0, waiting_timeout: float = 300.0) -> Task:
    return Task(
        name="chat_demo",
        title="Chat with another person about a topic",
        description=(
            f"You will be paired with another worker and chat about a given topic, {turns_each} messages each, "
            "then answer three short questions."
        ),
        world=ChatDemoWorld,
        replayable=True,
        world_options={"turns_each": turns_each, "turn_timeout": turn_timeout},
        roles=["Speaker 1", "Speaker 2"],
        contexts=TOPICS,
        reward=0.5,
        timeouts=Timeouts(turn=turn_timeout, waiting=waiting_timeout),
        caps=Caps(max_conversations=100, max_waiting=200, target_conversations=1000),
    )
