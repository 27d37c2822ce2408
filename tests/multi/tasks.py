"""Tasks for the several-instance tests: bounds generous enough for browsers, a failover and a reconnect."""

from __future__ import annotations

import dataclasses

from worlds import chat_demo
from worlds.base import Task, Timeouts


def cluster_chat() -> Task:
    """Two workers, three messages each, then the survey; a plan of six HITs (three conversations at a time)."""
    task = chat_demo.make_task(turns_each=3, turn_timeout=90.0, waiting_timeout=90.0)
    task.timeouts = Timeouts(turn=90.0, waiting=90.0, onboarding=90.0, reconnect_grace=45.0, submission=90.0)
    task.caps = dataclasses.replace(task.caps, max_conversations=3, target_conversations=3)
    return task
