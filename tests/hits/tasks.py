"""Small tasks for the HIT manager tests: few HITs open at once, short timeouts."""

from __future__ import annotations

import dataclasses

from tests.support import tasks as support
from worlds import chat_demo, static_form
from worlds.base import Caps, GoldPolicy, Qualifications, Task, World, choice, text_input


def chat2() -> Task:
    """Two-person chat, one message each; one conversation at a time, two wanted: 2 HITs open at a time."""
    task = chat_demo.make_task(turns_each=1, turn_timeout=10.0, waiting_timeout=10.0)
    task.timeouts = support.FAST
    task.caps = Caps(max_conversations=1, max_waiting=10, target_conversations=2, per_worker_total=5)
    return task


def gated2() -> Task:
    """The one-worker quiz task (onboarding: pick "blue"), two at a time, four wanted."""
    task = support.gated()
    task.caps = Caps(max_conversations=2, max_waiting=10, target_conversations=4, per_worker_total=5)
    return task


FORM_ITEMS = [
    {"id": "t1", "text": "Best day ever!"},
    {"id": "t2", "text": "My train is late <again> & again."},
    {"id": "t3", "text": "Something moved in the dark."},
]


def form3() -> static_form.FormTask:
    """The static form as HTMLQuestions: three items, three workers each ($0.05 + 20% fee: $0.18 a HIT)."""
    return static_form.make_task(items=FORM_ITEMS, assignments=3)


def form3_capped() -> static_form.FormTask:
    """`form3` with a worker allowed two of its three items."""
    task = form3()
    task.caps = dataclasses.replace(task.caps, per_worker_total=2)
    return task


def chat2_in_france() -> Task:
    """chat2 whose declaration asks for workers in France (or Quebec) with 1+ approved HITs."""
    task = chat2()
    task.qualifications = Qualifications(locales=("FR", "CA-QC"), min_approved_hits=1)
    return task


class GoldQuiz(World):
    """Two questions: one whose answer is known (a gold check), then the work (any answer)."""

    async def run(self) -> None:
        worker = self.agents[0]
        check = await worker.act(timeout=10.0, prompt="Gold: what colour is a clear sky?",
                                 widget=choice(["blue", "green"]))
        await self.gold(worker, check.data.get("choice") == "blue", "sky")
        work = await worker.act(timeout=10.0, prompt="Now the work: name a fruit.", widget=text_input())
        await self.save({"fruit": work.text})


def gold_checked() -> Task:
    """A one-worker task with a gold check whose failure pushes a score, soft-blocks and flags the work."""
    return Task(
        name="gold_checked", title="Name a fruit", description="Answer a check question, then name a fruit.",
        world=GoldQuiz, roles=["Worker"], timeouts=support.FAST,
        caps=Caps(max_conversations=2, max_waiting=10, target_conversations=4, per_worker_total=5),
        gold=GoldPolicy(qualification="Parley test: sky check", soft_block_below=50, flag_for_rejection=True),
    )
