"""Small tasks with short timeouts, for the integration tests (loaded as "tests.support.tasks:<name>")."""

from __future__ import annotations

import dataclasses
import os

from worlds import chat_demo, model_chat, multi_agent_dialog, qa_data_collection
from worlds.base import Caps, Message, OnboardingWorld, Task, Timeouts, World, choice

FAST = Timeouts(turn=5.0, waiting=5.0, onboarding=5.0, reconnect_grace=1.5, submission=60.0)


def qa() -> Task:
    task = qa_data_collection.make_task(turn_timeout=5.0)
    task.timeouts = FAST
    return task


def chat() -> Task:
    task = chat_demo.make_task(turns_each=2, turn_timeout=5.0, waiting_timeout=5.0)
    task.timeouts = FAST
    return task


def chat_short_wait() -> Task:
    task = chat()
    task.timeouts = Timeouts(turn=5.0, waiting=0.8, onboarding=5.0, reconnect_grace=1.5)
    return task


class Quiz(OnboardingWorld):
    """Passes a worker who picks "blue"."""

    async def run(self) -> None:
        await self.worker.observe(Message(kind="system", sender="Onboarding", text="What colour is the sky?"))
        reply = await self.worker.act(
            timeout=5.0, prompt="Pick the colour of a clear sky.", widget=choice(["blue", "green"])
        )
        self.passed = reply.data.get("choice") == "blue"


class EchoTurn(World):
    async def run(self) -> None:
        reply = await self.agents[0].act(timeout=5.0, prompt="Say anything.")
        await self.save({"said": reply.text})


def gated() -> Task:
    return Task(
        name="gated",
        title="A gated task",
        description="Answer one question to qualify, then say anything.",
        world=EchoTurn,
        roles=["Worker"],
        onboarding=Quiz,
        timeouts=FAST,
        caps=Caps(per_worker_total=5),
    )


class Crashing(World):
    async def run(self) -> None:
        await self.agents[0].act(timeout=5.0, prompt="Say anything; the world then fails.")
        raise RuntimeError("the world's author made a mistake")


def crashing() -> Task:
    return Task(name="crashing", title="Crashing", description="A world that raises.", world=Crashing,
                roles=["Worker"], timeouts=FAST)


def chat_long_grace() -> Task:
    """For restart tests: workers have time to come back after the server does."""
    task = chat()
    task.timeouts = Timeouts(turn=30.0, waiting=3.0, onboarding=30.0, reconnect_grace=20.0)
    return task


def chat_across_instances() -> Task:
    """For several-instance tests: three lines each, and turns and reconnects that outlast a takeover."""
    task = chat_demo.make_task(turns_each=3, turn_timeout=60.0, waiting_timeout=60.0)
    task.timeouts = Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=30.0)
    return task


def storm_chat() -> Task:
    """For the disconnect storm: four messages each, time enough for many reconnects."""
    task = chat_demo.make_task(turns_each=4, turn_timeout=60.0, waiting_timeout=60.0)
    task.timeouts = Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=15.0)
    task.caps = Caps(max_conversations=1000, max_waiting=2000, target_conversations=100_000)
    return task


def chat_closing_restart() -> Task:
    """For restart tests of a task that does not declare its world replayable: a restart closes its
    conversations."""
    return dataclasses.replace(chat_long_grace(), replayable=False)


def chat_few() -> Task:
    """For ownership tests: a restartable chat whose HIT plan is small (three conversations at a time)."""
    task = chat_long_grace()
    task.caps = dataclasses.replace(task.caps, max_conversations=3)
    return task


class EndlessTurns(World):
    """The worker always has a turn open: every message it sends is stored (the fuzz tests' store path)."""

    async def run(self) -> None:
        while True:
            await self.agents[0].act(timeout=600.0, prompt="Say anything.")


def endless_turns() -> Task:
    return Task(
        name="endless", title="Endless turns", description="Say anything, as often as you like.",
        world=EndlessTurns, roles=["Worker"],
        timeouts=Timeouts(turn=600.0, waiting=60.0, onboarding=60.0, reconnect_grace=60.0),
        caps=Caps(max_conversations=1000, max_waiting=2000, target_conversations=100_000, per_worker_total=100_000,
                  per_worker_concurrent=100_000),
    )


def chat_five() -> Task:
    """Five turns each: for tests that answer many turns (several sockets per agent, restarts)."""
    task = chat_demo.make_task(turns_each=5, turn_timeout=20.0, waiting_timeout=20.0)
    task.timeouts = Timeouts(turn=20.0, waiting=20.0, onboarding=20.0, reconnect_grace=20.0)
    return task


def chat_capped() -> Task:
    """Room for 20 arriving workers and 5 conversations (the caps tests join many workers at once)."""
    task = chat()
    task.caps = Caps(max_waiting=20, max_conversations=5)
    return task


def chat_nearly_done() -> Task:
    """Two conversations to go: four workers are all it can use."""
    task = chat()
    task.caps = Caps(max_waiting=100, max_conversations=5, target_conversations=2)
    return task


def chat_endless() -> Task:
    """For crash tests: pairs chat as fast as they can for as long as the test wants (no end in sight), and
    have time to come back after the server does."""
    task = chat_demo.make_task(turns_each=10_000, turn_timeout=60.0, waiting_timeout=60.0)
    task.timeouts = Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=30.0)
    return task


def chat_endless_closing() -> Task:
    """`chat_endless`, not replayable: a restart closes its conversations."""
    return dataclasses.replace(chat_endless(), replayable=False)


def chat_short_three() -> Task:
    """A short waiting room and three assignments per worker: claims come and go quickly."""
    task = chat_short_wait()
    task.caps = Caps(per_worker_total=3)
    return task


# ---- for the replay crash tests: time enough for the workers to come back after a SIGKILL ----------------

REPLAY_TIMEOUTS = Timeouts(turn=90.0, waiting=60.0, onboarding=60.0, reconnect_grace=60.0, submission=300.0)


def chat_replay() -> Task:
    """Two lines each, then the survey."""
    task = chat_demo.make_task(turns_each=2, turn_timeout=90.0, waiting_timeout=60.0)
    return dataclasses.replace(task, timeouts=REPLAY_TIMEOUTS)


def model_chat_replay() -> Task:
    """Three turns with an LLM bot on the test's fake OpenAI-compatible server (its address in FAKE_LLM_URL)."""
    task = model_chat.make_task(
        turns=3, bot="llm", bot_options={"base_url": os.environ["FAKE_LLM_URL"], "model": "ok", "timeout": 20.0},
        onboarding=False, turn_timeout=90.0, bot_timeout=30.0,
    )
    return dataclasses.replace(task, timeouts=REPLAY_TIMEOUTS)


def dialog_replay() -> Task:
    """Two people and an echo bot, round robin, until someone ends with [DONE]."""
    task = multi_agent_dialog.make_task(humans=2, bots=1, bot="echo", turn_timeout=90.0, bot_timeout=30.0)
    return dataclasses.replace(task, timeouts=REPLAY_TIMEOUTS)
