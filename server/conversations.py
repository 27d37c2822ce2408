"""Conversations of a run: forming one from matched workers plus bots, running its world, ending it.

A conversation ends exactly once, through `_finish`, with a `ConversationState`: completed (the world
returned), partner_left (a worker left or timed out), failed (the world raised, a bot timed out, or
Parley ended a turn under it), or closed (a restart could not continue it: its replay diverged). Every
human in it then gets a state that says what happened and lets them submit, except the one who left.

A conversation that was running when this process took its run over (a restart, a takeover) continues
by replaying its world (`resume`, server/replay.py) when its task is replayable.

Synchronous bots run on the run's bot threads (`bot_threads`, `Caps.bot_concurrency` of them), never on
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from server.agents import BotAgent, HumanAgent, jsonable, new_id
from server.members import Members
from server.protocol import PartnerTurn, Presence, Typing, chat_event
from server.replay import ANSWER_KEYS, Record, Replay
from server.states import AgentState, ConversationState
from server.store import Conversation, MessageRow, Store
from server.supervisor import Supervisor
from worlds.base import Agent, AgentTimeout, Task, TurnEnded, World

log = logging.getLogger(__name__)
S = AgentState
C = ConversationState

TYPING_EVERY_S = 1.0  # a worker's typing is relayed at most this often (the page sends one every few seconds)

RESTART_TEXT = (
    "The server restarted and this conversation could not continue. "
    "You can submit the HIT now and will be paid for it."
)
FAILED_TEXT = (
    "Something went wrong on our side and the conversation ended. "
    "You can submit the HIT now and will be paid for it."
)


@dataclass
class LiveConversation:
    id: str
    world: World
    humans: list[HumanAgent]
    bots: list[BotAgent]
    task: asyncio.Task[Any] | None = None
    ended: bool = False
    leavers: dict[str, AgentState] = field(default_factory=dict)
    replay: Replay | None = None  # continuing after a restart: the world is being replayed


class ConversationHost:
    """A run's conversations. It asks the run about its workers only through `members`, and tells it that
    room opened up through `want_match`."""

    def __init__(
        self, *, task: Task, store: Store, members: Members, supervisor: Supervisor, want_match: Callable[[], None]
    ) -> None:
        self.task = task
        self.store = store
        self.members = members
        self.run_id = members.id
        self.supervisor = supervisor
        self.want_match = want_match
        self.live: dict[str, LiveConversation] = {}
        self.forming = 0  # groups picked (`picked`) whose conversation is still being written (`form`)
        self.completed = 0
        caps = task.caps
        self.bot_semaphore = asyncio.Semaphore(caps.bot_concurrency)
        self._typed_at: dict[str, float] = {}  # agent id -> when its typing was last relayed
        self.bot_threads = ThreadPoolExecutor(caps.bot_concurrency, thread_name_prefix=f"bots:{self.run_id}")

    def close(self) -> None:
        """This process stops serving the run: bot calls not started are dropped, running ones are left
        to return on their own (a thread cannot be stopped)."""
        self.bot_threads.shutdown(wait=False, cancel_futures=True)

    def target_met(self) -> bool:
        return self.completed >= self.task.caps.target_conversations

    def humans_still_needed(self) -> int:
        """Workers the run can still use: the human roles of every conversation not yet started."""
        caps = self.task.caps
        started = len(self.live) + self.forming
        return max(0, caps.target_conversations - self.completed - started) * len(self.task.roles)

    def has_room(self) -> bool:
        caps = self.task.caps
        started = len(self.live) + self.forming
        return started < caps.max_conversations and self.completed + started < caps.target_conversations

    def picked(self) -> None:
        """The waiting room picked a group: its conversation counts against the caps from now, until `form`
        has written it (or failed)."""
        self.forming += 1

    async def form(self, agent_ids: list[str]) -> None:
        try:
            await self._form(agent_ids)
        finally:
            self.forming -= 1

    async def _form(self, agent_ids: list[str]) -> None:
        members, task, store = self.members, self.task, self.store
        index = await store.claim_conversation_index(self.run_id)
        context = task.context_for(index)
        conv_id = new_id()
        participants = dict(zip(task.roles, agent_ids, strict=True))
        participants.update({role: f"bot:{role}" for role in task.bots})
        await store.create_conversation(Conversation(
            id=conv_id, run_id=self.run_id, index=index, state=C.RUNNING, context=jsonable(context),
            participants=participants,
        ))
        humans = [_held(members, a) for a in agent_ids]
        for role, human in zip(task.roles, humans, strict=True):
            human.enter(role=role, conversation_id=conv_id)
            human.on_turn = self._turn_notifier(human)
        bots = self._bots(conv_id, humans)
        agents: list[Agent] = [*humans, *bots]
        world = task.build_world(agents, context, saver=self._saver(conv_id), seed=conv_id)
        live = LiveConversation(id=conv_id, world=world, humans=humans, bots=bots)
        self.live[conv_id] = live
        moved = await asyncio.gather(*(  # one group commit for all of them
            members.move(human.agent_id, S.IN_TASK, role=human.role, conversation_id=conv_id,
                     text=self._pairing_text(human.role))
            for human in humans
        ), return_exceptions=True)
        failure = next((m for m in moved if isinstance(m, BaseException)), None)
        if failure is not None:  # the store failed under the pairing: nobody is left half in a conversation
            log.error("pairing into conversation %s failed", conv_id, exc_info=failure,
                      extra={"run_id": self.run_id, "conversation_id": conv_id})
            await self._finish(live, C.FAILED, reason=f"pairing failed: {failure}")
            return
        for human, entered in zip(humans, moved, strict=True):
            if not entered:
                # The worker left in the instant of pairing: the conversation ends before it starts and the
                # others may submit (they are paid, as for any partner who leaves).
                live.leavers[human.agent_id] = members.state(human.agent_id) or S.DISCONNECTED
        if live.leavers:
            await self._finish(live, C.PARTNER_LEFT)
            return
        self.start_world(live)

    def _bots(self, conv_id: str, humans: list[HumanAgent]) -> list[BotAgent]:
        task = self.task
        return [
            BotAgent(
                factory(role), role=role, run_id=self.run_id, conversation_id=conv_id, store=self.store,
                semaphore=self.bot_semaphore, threads=self.bot_threads, turn_timeout=task.timeouts.turn,
                typing=self._typing_notifier(humans),
            )
            for role, factory in task.bots.items()
        ]

    def _saver(self, conv_id: str) -> Any:
        async def save(data: dict[str, Any]) -> None:
            await self.store.save_world_data(conv_id, run_id=self.run_id, data=data)

        return save

    async def resume(self, conversation: Conversation) -> LiveConversation | None:
        """Make ready to continue a conversation that was running when this process took its run over, by
        replaying its world from the record; `start_world` then runs it. None when it cannot continue (a
        worker in it is no longer in the task, the task's roles or contexts changed): the caller closes it."""
        task, extra = self.task, {"run_id": self.run_id, "conversation_id": conversation.id}
        if set(conversation.participants) != {*task.roles, *task.bots}:
            log.warning("conversation %s cannot be replayed: the task's roles changed", conversation.id, extra=extra)
            return None
        context = task.context_for(conversation.index)
        if jsonable(context) != conversation.context:
            log.warning("conversation %s cannot be replayed: its context is no longer the one it had",
                        conversation.id, extra=extra)
            return None
        humans: list[HumanAgent] = []
        for role in task.roles:
            row = await self.store.get_agent(conversation.participants[role])
            if row is None or row.state != S.IN_TASK or row.conversation_id != conversation.id:
                return None  # left while the conversation ended: nothing to continue
            humans.append(await self.members.load_agent(row))
        for role, human in zip(task.roles, humans, strict=True):
            human.enter(role=role, conversation_id=conversation.id)
            human.on_turn = self._turn_notifier(human)
        bots = self._bots(conversation.id, humans)
        replay = Replay(conversation.id, await Record.load(self.store, conversation), save=self._saver(conversation.id))
        agents: list[Agent] = [replay.wrap(agent) for agent in [*humans, *bots]]
        world = task.build_world(agents, context, saver=replay.save, seed=conversation.id)
        live = LiveConversation(id=conversation.id, world=world, humans=humans, bots=bots, replay=replay)
        self.live[conversation.id] = live
        return live

    def start_world(self, live: LiveConversation) -> None:
        live.task = self.supervisor.spawn(self._run_world(live), name=f"world:{live.id}")

    def _pairing_text(self, role: str) -> str | None:
        """What the pairing says to the worker in `role`: their role and, where the task reveals them, their
        partners' (None, the state's own text, for a task of one person alone)."""
        task = self.task
        others = [r for r in [*task.roles, *task.bots] if r != role]
        if not others:
            return None
        opening = "You are paired." if len(task.roles) > 1 else "You are in the task."
        text = f"{opening} Your role: {role}."
        if task.reveal_partner_roles:
            text = text[:-1] + f"; your partner{'s are' if len(others) > 1 else ' is'} {', '.join(others)}."
        return text

    # ---- what partners see of each other, live (ephemeral frames: never stored) ------------------------

    def _partners(self, agent_id: str) -> list[HumanAgent]:
        human = self.members.human(agent_id)
        live = self.live.get(human.conversation_id) if human is not None else None
        if live is None or live.ended:
            return []
        return [other for other in live.humans if other.agent_id != agent_id]

    async def _tell_partners(self, agent_id: str, frame: dict[str, Any]) -> None:
        for partner in self._partners(agent_id):
            await partner.channel.send_ephemeral(frame)

    def _turn_notifier(self, human: HumanAgent) -> Any:
        async def notify(role: str, timeout_s: float | None) -> None:
            await self._tell_partners(human.agent_id, PartnerTurn(sender=role, timeout_s=timeout_s).model_dump())

        return notify

    async def relay_typing(self, agent_id: str, active: bool) -> None:
        """A worker is typing (or stopped): tell their partners, at most once a second while typing."""
        human = self.members.human(agent_id)
        if human is None or not human.role:
            return
        now = time.monotonic()
        if active and now - self._typed_at.get(agent_id, -TYPING_EVERY_S) < TYPING_EVERY_S:
            return
        if active:
            self._typed_at[agent_id] = now
        else:
            self._typed_at.pop(agent_id, None)
        await self._tell_partners(agent_id, Typing(sender=human.role, active=active).model_dump())

    async def presence(self, agent_id: str, *, present: bool) -> None:
        """A worker's page went away (its socket closed or went silent) or came back: tell their partners at
        once; the reconnect grace decides later whether they left."""
        human = self.members.human(agent_id)
        if human is None or not human.role:
            return
        grace = self.task.timeouts.reconnect_grace
        await self._tell_partners(agent_id, Presence(sender=human.role, present=present, grace_s=grace).model_dump())

    def _typing_notifier(self, humans: list[HumanAgent]) -> Any:
        async def notify(role: str, active: bool) -> None:
            frame = Typing(sender=role, active=active).model_dump()
            for human in humans:
                await human.channel.send_ephemeral(frame)

        return notify

    async def _run_world(self, live: LiveConversation) -> None:
        try:
            if live.replay is not None:
                await live.replay.start()
            await live.world.run()
            if live.replay is not None:
                live.replay.world_ended()
        except Exception as exc:
            await self._world_failed(live, exc)
            return
        # A CancelledError is a real cancellation (a worker left, or shutdown), which ends the conversation
        # itself: it propagates.
        await self._finish(live, C.COMPLETED)

    async def _world_failed(self, live: LiveConversation, exc: Exception) -> None:
        diverged = live.replay.diverged if live.replay is not None else None
        if diverged is not None:  # whatever the world made of it (it may have caught the exception)
            log.error("%s; it is closed as a restart closes a conversation that cannot continue", diverged,
                      extra={"run_id": self.run_id, "conversation_id": live.id})
            await self._finish(live, C.CLOSED, reason=f"the replay after a restart diverged: {diverged.what}")
            return
        if isinstance(exc, AgentTimeout):
            leaver = next((h for h in live.humans if h.role == exc.role), None)
            if leaver is None:  # a bot timed out: nobody's fault on the worker side
                log.warning("bot %s timed out in conversation %s", exc.role, live.id,
                            extra={"run_id": self.run_id, "conversation_id": live.id})
                await self._finish(live, C.FAILED, reason=str(exc))
            else:
                live.leavers[leaver.agent_id] = S.TIMED_OUT
                await self._finish(live, C.PARTNER_LEFT, reason=str(exc))
        elif isinstance(exc, TurnEnded):
            # Parley ended a turn the world was waiting on while the world ran on: it must still end, or its
            # workers would wait for a turn that never comes.
            log.error("a turn ended under the world of conversation %s: %s", live.id, exc.reason,
                      extra={"run_id": self.run_id, "conversation_id": live.id})
            await self._finish(live, C.FAILED, reason=str(exc))
        else:
            log.error("world of conversation %s raised", live.id, exc_info=exc,
                      extra={"run_id": self.run_id, "conversation_id": live.id})
            await self._finish(live, C.FAILED, reason=f"{type(exc).__name__}: {exc}")

    async def agent_left(self, agent_id: str, state: AgentState, text: str | None) -> None:
        """A worker in a conversation left for good: stop its world and release the others."""
        human = _held(self.members, agent_id)
        live = self.live.get(human.conversation_id)
        if live is None or live.ended:
            await self.members.move(agent_id, state, text=text)
            return
        live.leavers[agent_id] = state
        if live.task is not None and live.task is not asyncio.current_task():
            live.ended = True  # claim the ending before the world can finish on its own
            live.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live.task
            live.ended = False
        await self._finish(live, C.PARTNER_LEFT, reason=f"{human.role} {state.value}")

    async def _finish(self, live: LiveConversation, outcome: ConversationState, reason: str = "") -> None:
        if live.ended:
            return
        live.ended = True
        members, store = self.members, self.store
        self.live.pop(live.id, None)
        for human in live.humans:
            self._typed_at.pop(human.agent_id, None)
            human.on_turn = None
        if outcome == C.CLOSED:
            conversation = await store.get_conversation(live.id)
            if conversation is not None:
                await deliver_stored_lines(store, members, conversation)
        await store.end_conversation(live.id, state=outcome, reason=reason)
        if outcome == C.COMPLETED:
            self.completed += 1
        await members.notify("conversation", {"conversation_id": live.id, "outcome": outcome})
        for human in live.humans:
            human.end_turn(f"the conversation ended ({outcome})")
            if members.human(human.agent_id) is None:
                continue  # left on its own while this ending was written, and already let go: nothing to move
            if human.agent_id in live.leavers:
                if members.state(human.agent_id) == S.IN_TASK:
                    await members.move(human.agent_id, live.leavers[human.agent_id])
            elif outcome == C.COMPLETED:
                await members.move(human.agent_id, S.DONE)
            elif outcome == C.PARTNER_LEFT:
                await members.move(human.agent_id, S.PARTNER_LEFT)
            elif outcome == C.CLOSED:
                await members.move(human.agent_id, S.CLOSED, text=RESTART_TEXT)
            else:
                await members.move(human.agent_id, S.CLOSED, text=FAILED_TEXT)
        for bot in live.bots:
            try:
                await bot.shutdown()
            except Exception:
                log.exception("bot %s shutdown failed", bot.role)
        self.want_match()


def _is_chat_line(message: MessageRow) -> bool:
    """A chat line, not a structured answer (a rating, a survey): answers are the world's, which it may keep
    to itself, unlike the chat lines it passes on."""
    return message.kind == "chat" and not ANSWER_KEYS & message.data.keys()


def _held(members: Members, agent_id: str) -> HumanAgent:
    human = members.human(agent_id)
    if human is None:
        raise KeyError(f"agent {agent_id} is not held by this process")
    return human


async def deliver_stored_lines(store: Store, members: Members, conversation: Conversation) -> None:
    """Before a restart closes a conversation that was running: every chat line of it in the record (stored
    and acked to its sender) that a worker in it has not been given yet goes on that worker's stream, in the
    order said. The process died between storing a line and the world passing it on; the line is part of
    the conversation the worker is paid for, so the worker sees it before being told it ended."""
    lines = [m for m in await store.messages(conversation.id) if _is_chat_line(m)]
    if not lines:
        return
    for agent_id in conversation.participants.values():
        row = await store.get_agent(agent_id)  # None for a bot's "bot:<role>"
        if row is None or row.state != S.IN_TASK:
            continue
        human = await members.load_agent(row)
        seen = {e.get("message_id") for _, e in await store.events_after(agent_id, 0)}
        missing = [m for m in lines if m.agent_id != agent_id and m.id not in seen]
        if missing:
            await human.channel.emit([
                chat_event(message_id=m.id, sender=m.sender, text=m.text, kind=m.kind,
                           data={k: v for k, v in m.data.items() if not k.startswith("_")}, mine=False, client_id=None)
                for m in missing
            ])
