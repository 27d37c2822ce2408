"""The waiting room of a run and its matcher: workers in `waiting` wait here, each with a timer, until the
matcher picks a group of them for a conversation.

A picked worker is out of the room and in `pairing` until its move to `in_task` is written: a page that
reconnects meanwhile does not put it back (it would be picked twice). A pairing the store fails sends its
workers back after `PAIRING_RETRY_S`, so a failing store is not retried in a tight loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from server.conversations import ConversationHost
from server.members import Members
from server.states import AgentState
from server.supervisor import Supervisor
from worlds.base import Task

log = logging.getLogger(__name__)
S = AgentState
PAIRING_RETRY_S = 1.0  # after a pairing the store failed, its workers wait this long before the next try
TARGET_MET_TEXT = (
    "This task has collected all the conversations it needs. "
    "You can submit the HIT now and will be paid for your wait."
)


class WaitingRoom:
    """A run's waiting room. It asks the run about its workers only through `members`, and hands each
    group it picks to the run's conversations (`host`)."""

    def __init__(self, *, task: Task, members: Members, host: ConversationHost, supervisor: Supervisor) -> None:
        self.task = task
        self.members = members
        self.host = host
        self.supervisor = supervisor
        self._timers: dict[str, asyncio.Task[Any]] = {}  # agent id -> its waiting timer, in arrival order
        self.pairing: set[str] = set()  # picked; their conversation is being formed
        self._wanted = asyncio.Event()

    def __len__(self) -> int:
        return len(self._timers)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._timers

    def __iter__(self) -> Iterator[str]:
        return iter(self._timers)

    async def admit(self, agent_id: str) -> None:
        """A worker in `waiting` takes a place in the room, unless it has one or is being paired."""
        if self.members.state(agent_id) != S.WAITING or agent_id in self._timers or agent_id in self.pairing:
            return
        if self.host.target_met():
            await self.members.move(agent_id, S.WAITING_EXPIRED, text=TARGET_MET_TEXT)
            return
        self._timers[agent_id] = self.supervisor.spawn(self._expire(agent_id), name=f"wait:{agent_id}")
        self.want_match()

    def leave(self, agent_id: str) -> None:
        timer = self._timers.pop(agent_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    def want_match(self) -> None:
        self._wanted.set()

    async def match_forever(self) -> None:
        """The one task that picks groups, so two never take the same worker. Each group leaves the room the
        moment it is picked; its conversation is written in a task of its own, so pairing keeps up when each
        write is a network round trip (PostgreSQL) rather than waiting for the one before."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            while (group := self._pick_group()) is not None:
                for agent_id in group:
                    self.leave(agent_id)
                self.pairing.update(group)
                self.host.picked()
                self.supervisor.spawn(self._form(group), name=f"form:{group[0]}")
            if self.host.target_met():
                for agent_id in list(self._timers):
                    await self.members.move(agent_id, S.WAITING_EXPIRED, text=TARGET_MET_TEXT)

    async def _form(self, group: list[str]) -> None:
        try:
            await self.host.form(group)
        except Exception:
            log.exception("pairing agents %s failed; those not yet moved go back to the waiting room", group,
                          extra={"run_id": self.members.id})
            self.supervisor.spawn(self._readmit(group), name=f"rewait:{group[0]}")
        finally:
            self.pairing.difference_update(group)
            self.want_match()  # room may have opened

    async def _readmit(self, group: list[str]) -> None:
        await asyncio.sleep(PAIRING_RETRY_S)  # a store that just failed likely fails again: no tight retry loop
        for agent_id in group:
            await self.admit(agent_id)

    async def _expire(self, agent_id: str) -> None:
        await asyncio.sleep(self.task.timeouts.waiting)
        if self.members.state(agent_id) == S.WAITING:
            await self.members.move(agent_id, S.WAITING_EXPIRED)

    def _pick_group(self) -> list[str] | None:
        if not self.host.has_room():
            return None
        group: list[str] = []
        seen_workers: set[str] = set()
        for agent_id in self._timers:
            worker, human = self.members.worker_of(agent_id), self.members.human(agent_id)
            if worker in seen_workers or human is None or not human.channel.attached:
                continue
            group.append(agent_id)
            seen_workers.add(worker)
            if len(group) == len(self.task.roles):
                return group
        return None
