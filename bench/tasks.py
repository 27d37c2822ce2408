"""The bench task: two workers who chat freely (no turn-taking) until each says goodbye.

Load is about the relay, not a world's script: each worker always has a turn open, every message goes to
the partner, and timeouts and caps are generous so the waiting room and the matcher never refuse the load.
A worker leaves the chat by sending a message with `data={"bye": true}`; when both have, the world ends,
both workers see `done` and submit. Loaded as `PARLEY_DEMO_RUNS='{"bench": "bench.tasks:chat"}'`.
"""

from __future__ import annotations

import asyncio

from worlds.base import Agent, AgentTimeout, Caps, Message, Task, Timeouts, World, text_input

TURN_TIMEOUT_S = 600.0


class RelayWorld(World):
    """Each agent speaks whenever it likes; its messages go to every other agent."""

    turn_timeout = TURN_TIMEOUT_S

    async def run(self) -> None:
        await self.broadcast(Message(kind="context", sender="Task", text="Benchmark chat: say anything."))
        relayed = [0]
        try:
            async with asyncio.TaskGroup() as group:
                for agent in self.agents:
                    group.create_task(self._relay(agent, relayed))
        except BaseExceptionGroup as failed:
            # Let the runner see an AgentTimeout as itself, so it ends the conversation as partner_left.
            timeouts = [e for e in failed.exceptions if isinstance(e, AgentTimeout)]
            if timeouts:
                raise timeouts[0] from None
            raise
        await self.save({"relayed": relayed[0]})

    async def _relay(self, speaker: Agent, relayed: list[int]) -> None:
        while True:
            message = await speaker.act(timeout=self.turn_timeout, prompt="Say anything.", widget=text_input())
            if message.data.get("bye"):
                return
            relayed[0] += 1
            await self.broadcast(message, exclude=speaker)


def chat(turn_timeout: float = TURN_TIMEOUT_S) -> Task:
    return Task(
        name="bench_chat",
        title="Benchmark chat",
        description="Simulated workers chatting freely (load benchmark).",
        world=RelayWorld,
        roles=["A", "B"],
        reward=0.0,
        timeouts=Timeouts(turn=turn_timeout, waiting=600.0, onboarding=600.0, reconnect_grace=120.0,
                          submission=600.0),
        caps=Caps(max_conversations=1_000_000, max_waiting=1_000_000, per_worker_total=1_000_000,
                  bot_concurrency=1, target_conversations=1_000_000_000),
    )
