"""Multi-agent dialog: several humans and bots chat round-robin until someone ends a message with [DONE].

Flow: every participant sees the topic in the task pane. Turns go round-robin over the humans
("Human 1".."Human n", in that order) then the bots ("Bot 1".."Bot m"); every message is shown to all others.
When a message ends with `[DONE]`, each other participant, in turn order, gets one final message; then the
conversation ends. A safety cap (`max_messages`) ends an endless chat. A bot that fails (an LLM timeout or
error) posts a notice instead of a message, and the turn moves on.

Saved record (one per conversation, updated after every message):
    {"topic": str,
     "participants": {role: "human" | "bot"},
     "dialogue": [{"id": str, "speaker": str, "text": str, "final": bool, "error": {...} (bots only, on failure)}],
     "ended_by": role | None,
     "end_reason": "done" | "max_messages" | None (still running)}
Options: `humans`, `bots`, `bot` / `bot_options` (see `worlds.bots.make_bot`), `topics`, `max_messages`.
"""

from __future__ import annotations

from typing import Any

from worlds.base import Agent, Caps, Message, Task, Timeouts, World, text_input
from worlds.bots import is_error, make_bot

DONE = "[DONE]"
TOPICS = [
    "Plan a weekend trip together: where to, and what to do there.",
    "Agree on the three best foods to take on a picnic.",
    "Decide which film the group should watch on Friday night.",
    "Invent a new board game: its goal and its most important rule.",
]


def ends_conversation(text: str) -> bool:
    return text.rstrip().endswith(DONE)


class MultiAgentDialogWorld(World):
    turn_timeout = 300.0
    bot_timeout = 120.0
    max_messages = 40
    bot_roles: frozenset[str] = frozenset()

    def __init__(self, agents: list[Agent], context: Any = None, *, saver: Any = None) -> None:
        super().__init__(agents, context, saver=saver)
        self.dialogue: list[dict[str, Any]] = []
        self.ended_by: str | None = None
        self.end_reason: str | None = None

    def episode_done(self) -> bool:
        return self.end_reason is not None

    async def run(self) -> None:
        await self.broadcast(Message(
            kind="context", sender="Task", text=f"Topic: {self.context}",
            data={"instructions": f"Take turns. End your message with {DONE} when the chat has reached its end."},
        ))
        await super().run()

    async def parley(self) -> None:
        speaker = self.agents[len(self.dialogue) % len(self.agents)]
        message = await self._turn(speaker, f"Your turn. End with {DONE} to finish the conversation.")
        if ends_conversation(message.text) and not is_error(message):
            self.ended_by = speaker.role
            start = self.agents.index(speaker)
            for offset in range(1, len(self.agents)):
                other = self.agents[(start + offset) % len(self.agents)]
                await self._turn(other, "The conversation is ending: write your final message.", final=True)
            self.end_reason = "done"
        elif len(self.dialogue) >= self.max_messages:
            self.end_reason = "max_messages"
        await self._save()

    async def _turn(self, speaker: Agent, prompt: str, *, final: bool = False) -> Message:
        is_bot = speaker.role in self.bot_roles
        message = await speaker.act(
            timeout=self.bot_timeout if is_bot else self.turn_timeout, prompt=prompt, widget=text_input(),
        )
        entry: dict[str, Any] = {"id": message.id, "speaker": speaker.role, "text": message.text, "final": final}
        if is_error(message):
            entry["error"] = message.data["error"]
        self.dialogue.append(entry)
        await self.broadcast(message, exclude=speaker)
        return message

    async def _save(self) -> None:
        await self.save({
            "topic": self.context,
            "participants": {a.role: "bot" if a.role in self.bot_roles else "human" for a in self.agents},
            "dialogue": self.dialogue,
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
        })


def make_task(
    humans: int = 2,
    bots: int = 1,
    bot: str = "retrieval",
    bot_options: dict[str, Any] | None = None,
    topics: list[str] | None = None,
    max_messages: int = 40,
    turn_timeout: float = 300.0,
    bot_timeout: float = 120.0,
    waiting_timeout: float = 300.0,
) -> Task:
    if humans < 1 or bots < 0 or humans + bots < 2:
        raise ValueError("a multi-agent dialog needs at least one human and two participants")
    factory = make_bot(bot, act_timeout=bot_timeout, **(bot_options or {}))
    bot_roles = [f"Bot {i}" for i in range(1, bots + 1)]

    return Task(
        name="multi_agent_dialog",
        title="Group chat about a topic",
        description=(
            f"Chat in a group of {humans + bots} ({humans} people"
            f"{f', {bots} chatbot' + ('s' if bots > 1 else '') if bots else ''}) about a given topic, taking turns. "
            f"End your message with {DONE} when the conversation is finished."
        ),
        world=MultiAgentDialogWorld,
        replayable=True,
        world_options={
            "turn_timeout": turn_timeout, "bot_timeout": bot_timeout, "max_messages": max_messages,
            "bot_roles": frozenset(bot_roles),
        },
        roles=[f"Human {i}" for i in range(1, humans + 1)],
        bots={role: factory for role in bot_roles},
        contexts=topics or TOPICS,
        reward=0.6,
        timeouts=Timeouts(turn=turn_timeout, waiting=waiting_timeout),
        caps=Caps(max_conversations=100, max_waiting=200, target_conversations=1000),
    )
