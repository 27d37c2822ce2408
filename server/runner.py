"""A task run: joining, the onboarding gate, caps, timeouts, departures.

The waiting room and its matcher live in `waiting_room.py`; conversations themselves (forming one, running
its world, ending it) in `conversations.py`.
No FastAPI here: the websocket route hands sockets and frames in through `connect`, `receive` and `leave`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from server.agents import HumanAgent, NotYourTurn, new_id
from server.channel import Channel, Socket
from server.claims import (
    ASSIGNMENT_IN_USE_TEXT,
    Admission,
    Refusal,
    agent_id_for,
    new_resume_key,
    resumes,
    worker_cap_refusal,
)
from server.close_codes import CloseCode
from server.conversations import RESTART_TEXT, ConversationHost, deliver_stored_lines
from server.fence import Fence, LeaseLost, always
from server.protocol import ErrorFrame, JoinRequest, Say, StateEvent, Welcome
from server.ratelimit import AgentLimits
from server.states import (
    ARRIVING_STATES,
    LIVE_STATES,
    STATE_TEXT,
    SUBMITTABLE_STATES,
    AgentState,
    ConversationState,
    IllegalTransition,
    RunStatus,
)
from server.store import AgentRow, Conversation, Store, TaskRun
from server.supervisor import Supervisor
from server.tokens import TokenSigner
from server.waiting_room import WaitingRoom
from worlds.base import AgentTimeout, Task

log = logging.getLogger(__name__)
S = AgentState
C = ConversationState


STOPPED_TEXT = (
    "The requester stopped this task before you were matched. "
    "You can submit the HIT now and will be paid for it."
)


def submission_expired_text(seconds: float) -> str:
    return (
        f"The time to submit ran out ({_duration(seconds)} after the task ended), so this HIT is no longer "
        "held for you. Please return it."
    )


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"


Observer = Callable[["Run", str, dict[str, Any]], Awaitable[None]]


# How long a state change waits for a late lease renewal before it gives up (LeaseLost).
FENCE_WAIT_S = 30.0


class Run:
    """One task run in this process. Observers (e.g. the HIT manager) hear about state changes:
    `("state", {"agent_id", "worker_id", "state"})`, `("onboarding", {"worker_id", "passed"})` and
    `("conversation", {"conversation_id", "outcome"})`.
    """

    def __init__(
        self, row: TaskRun, task: Task, *, store: Store, signer: TokenSigner, heartbeat_s: float,
        fence: Fence = always,
    ) -> None:
        self.id = row.id
        self.fence = fence  # whether this process still holds the run's lease (server/ownership.py)
        self.row = row
        self.task = task
        self.store = store
        self.signer = signer
        self.heartbeat_s = heartbeat_s
        self.supervisor = Supervisor(f"run:{row.id}")
        self.humans: dict[str, HumanAgent] = {}
        self.states: dict[str, AgentState] = {}
        self.workers: dict[str, str] = {}
        self._graces: dict[str, asyncio.Task[Any]] = {}
        self._lifecycles: dict[str, asyncio.Task[Any]] = {}
        self._deadlines: dict[str, asyncio.Task[Any]] = {}  # agent id -> its submission timer
        # A worker's lock lives while a join holds or awaits it: no entry is kept per worker ever seen.
        self._join_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.rate_limits = AgentLimits()
        self.arriving: set[str] = set()  # admitted and not yet in a conversation: joined, onboarding, waiting
        self._admitting = 0  # joins holding a seat whose agent is still being written
        self.host = ConversationHost(
            task=task, store=store, members=self, supervisor=self.supervisor, want_match=self._want_match
        )
        self.waiting = WaitingRoom(task=task, members=self, host=self.host, supervisor=self.supervisor)
        self.observers: list[Observer] = []

    # ---- what the run's parts may ask of it (server/members.py) ------------------------------------

    def human(self, agent_id: str) -> HumanAgent | None:
        return self.humans.get(agent_id)

    def state(self, agent_id: str) -> AgentState | None:
        return self.states.get(agent_id)

    def worker_of(self, agent_id: str) -> str:
        return self.workers[agent_id]

    def _want_match(self) -> None:
        self.waiting.want_match()

    async def notify(self, kind: str, payload: dict[str, Any]) -> None:
        for observer in list(self.observers):
            try:
                await observer(self, kind, payload)
            except Exception:
                log.exception("observer %r failed on %s", observer, kind)

    # ---- start and stop -----------------------------------------------------------------------

    async def start(self) -> None:
        """Recover after a restart (or take the run over from another instance): conversations that were live
        continue by replay when the task is replayable and are closed otherwise; live agents get a grace
        period to come back."""
        resumed = []
        for conv in await self.store.conversations(self.id, states=[C.RUNNING], kind=None):
            live = await self.host.resume(conv) if conv.kind == "task" and self.task.replayable else None
            if live is not None:
                resumed.append(live)
                continue
            await deliver_stored_lines(self.store, self, conv)
            await self.store.end_conversation(conv.id, state=C.CLOSED, reason="server restarted")
        self.host.completed = len(await self.store.conversations(self.id, states=[C.COMPLETED]))
        continuing = {live.id for live in resumed}
        for row in await self.store.agents(self.id, states=LIVE_STATES):
            human = await self._load(row)
            if row.state == S.IN_TASK and row.conversation_id not in continuing:
                await self.move(human.agent_id, S.CLOSED, text=RESTART_TEXT)
            else:
                self._start_grace(row.id)
        now = time.time()
        for row in await self.store.agents(self.id, states=SUBMITTABLE_STATES):
            if row.id not in self._deadlines:
                self._start_deadline(row.id, row.updated_at + self.task.timeouts.submission - now)
        for live in resumed:  # every worker is back in memory first: the worlds run on a recovered run
            self.host.start_world(live)
        self.supervisor.spawn(self.waiting.match_forever(), name="matcher")

    async def stop(self) -> None:
        """Stop this process's work on the run. Durable state stays as it is; a restart recovers it.

        Pages still attached are closed with 1012 (service restart): they reconnect and resume from the
        store, on whichever process serves the run then."""
        await self.supervisor.aclose()
        self.host.close()
        for human in list(self.humans.values()):
            await human.channel.close(CloseCode.MOVED, "This task moved to another server process; reconnecting.")

    async def set_status(self, status: RunStatus) -> None:
        """The run's status changed in the database (e.g. `parley stop`). Stopped: joins are refused and every
        worker not yet in a conversation is let go with a way to submit; conversations under way finish."""
        self.row.status = status
        if status == RunStatus.ACTIVE:
            return
        for agent_id, state in list(self.states.items()):
            if state in (S.JOINED, S.ONBOARDING, S.WAITING):
                await self.depart(agent_id, S.CLOSED, text=STOPPED_TEXT)

    def has_work(self) -> bool:
        """Whether any worker is still being taken through the task here."""
        return any(state in LIVE_STATES for state in self.states.values())

    # ---- joining ------------------------------------------------------------------------------

    async def join(self, req: JoinRequest) -> Admission:
        """A page claims an assignment: the first claim makes its agent; a later one gets a token for it only
        with the first page's resume key (see claims.py)."""
        key = req.resume_key or new_resume_key()
        agent_id = agent_id_for(self.signer, run_id=self.id, assignment_id=req.assignment_id, resume_key=key)
        async with self._join_locks.setdefault(req.worker_id, asyncio.Lock()):
            row = await self.store.agent_for_assignment(self.id, assignment_id=req.assignment_id)
            if row is None:
                await self._check_eligible(req.worker_id)
                with self._seat():
                    claim = AgentRow(
                        id=agent_id, run_id=self.id, worker_id=req.worker_id, assignment_id=req.assignment_id,
                        hit_id=req.hit_id, turk_submit_to=req.turk_submit_to, state=S.JOINED,
                        created_at=(stamp := time.time()), updated_at=stamp,  # given: default factories are slow
                    )
                    row = await self.store.create_agent(claim)
                    if row is claim:  # not made first by another request for this assignment
                        human = await self._load(row, new=True)
                if row is claim:
                    await human.channel.emit([_state_payload(S.JOINED)])
                    self._start_grace(row.id)
            if row.worker_id != req.worker_id:
                raise Refusal("assignment_taken", "This assignment belongs to another worker. Please return this HIT.")
            if not resumes(row.id, agent_id):
                raise Refusal("assignment_in_use", ASSIGNMENT_IN_USE_TEXT, 409)
        token = self.signer.issue(
            run_id=self.id, worker_id=row.worker_id, assignment_id=row.assignment_id, agent_id=row.id
        )
        return Admission(agent=row, token=token, resume_key=key)

    async def _check_eligible(self, worker_id: str) -> None:
        if self.row.status != RunStatus.ACTIVE:
            raise Refusal("run_closed", "This task is no longer taking workers. Please return this HIT.", 409)
        reason = await self.store.worker_block(worker_id)
        if reason is not None:
            raise Refusal("blocked", f"You cannot work on this task ({reason}). Please return this HIT.")
        result = await self.store.onboarding_result(worker_id, task_name=self.task.name)
        if result is not None and not result.passed and result.attempts >= self.task.caps.onboarding_attempts:
            raise Refusal(
                "onboarding_failed",
                "You did not pass this task's qualification earlier, so you cannot take it again. "
                "Please return this HIT.",
            )
        refusal = await self._worker_cap_refusal(worker_id)
        if refusal is not None:
            raise refusal
        if self.host.target_met():
            raise Refusal("run_full", "This task has all the conversations it needs. Please return this HIT.", 409)

    async def _worker_cap_refusal(self, worker_id: str) -> Refusal | None:
        return await worker_cap_refusal(self.store, self.task.caps, worker_id=worker_id, run_id=self.id)

    @contextlib.contextmanager
    def _seat(self) -> Iterator[None]:
        """A place among the run's arriving workers, for a join about to write its agent. Counting and taking
        it happen with no await between them, so concurrent joins cannot all pass the same count; the seat is
        held until the new agent counts itself (in `arriving`), or given back if the join fails."""
        caps = self.task.caps
        taken = len(self.arriving) + self._admitting
        if taken >= self.host.humans_still_needed():
            raise Refusal(
                "run_full",
                "Enough workers are already on their way for the conversations this task still needs. "
                "Please return this HIT.",
                409,
            )
        if taken >= caps.max_waiting:
            raise Refusal(
                "waiting_room_full",
                "Too many workers are waiting for a partner right now. Please return this HIT and try later.",
                409,
            )
        self._admitting += 1
        try:
            yield
        finally:
            self._admitting -= 1

    async def load_agent(self, row: AgentRow) -> HumanAgent:
        """The in-memory agent for a stored row (loading it if this process has not yet)."""
        return await self._load(row)

    async def _load(self, row: AgentRow, *, new: bool = False) -> HumanAgent:
        human = self.humans.get(row.id)
        if human is None:
            channel = Channel(row.id, self.store, 0) if new else await Channel.load(row.id, self.store)
            human = HumanAgent(
                agent_id=row.id, run_id=self.id, channel=channel, store=self.store,
                turn_timeout=self.task.timeouts.turn,
            )
            human.role, human.conversation_id = row.role, row.conversation_id
            self.humans[row.id] = human
            self._set_state(row.id, AgentState(row.state))
            self.workers[row.id] = row.worker_id
        return human

    # ---- sockets ------------------------------------------------------------------------------

    async def connect(self, agent_id: str, socket: Socket, last_seq: int) -> None:
        row = await self.store.get_agent(agent_id)
        if row is None:
            raise KeyError(agent_id)
        human = await self._load(row)
        welcome = Welcome(
            agent_id=agent_id, run_id=self.id, state=self.states[agent_id], head_seq=0,
            heartbeat_s=self.heartbeat_s,
        ).model_dump()
        await human.channel.attach(socket, last_seq, welcome)
        grace = self._graces.pop(agent_id, None)
        if grace is not None:
            grace.cancel()
        state = self.states[agent_id]
        if grace is not None and state == S.IN_TASK:
            await self.host.presence(agent_id, present=True)
        if state in (S.JOINED, S.ONBOARDING, S.WAITING) and agent_id not in self._lifecycles:
            task = self.supervisor.spawn(self._lifecycle(agent_id), name=f"agent:{agent_id}")
            self._lifecycles[agent_id] = task
            task.add_done_callback(lambda _t: self._lifecycle_done(agent_id))
        if state == S.WAITING:
            self.waiting.want_match()

    async def disconnect(self, agent_id: str, socket: Socket) -> None:
        human = self.humans.get(agent_id)
        if human is None:
            return
        if not await human.channel.detach(socket):  # replaced by a newer socket, or never attached
            self._release_if_gone(agent_id)
            return
        if self.states.get(agent_id) in LIVE_STATES:
            self._start_grace(agent_id)
            if self.states.get(agent_id) == S.IN_TASK:
                await self.host.presence(agent_id, present=False)
        else:
            self._release_if_gone(agent_id)

    def _start_grace(self, agent_id: str) -> None:
        old = self._graces.pop(agent_id, None)
        if old is not None:
            old.cancel()
        self._graces[agent_id] = self.supervisor.spawn(self._grace(agent_id), name=f"grace:{agent_id}")

    async def _grace(self, agent_id: str) -> None:
        await asyncio.sleep(self.task.timeouts.reconnect_grace)
        self._graces.pop(agent_id, None)
        if not self.humans[agent_id].channel.attached:
            await self.depart(agent_id, S.DISCONNECTED)
        self._release_if_gone(agent_id)

    async def receive(self, agent_id: str, frame: Say, socket: Socket | None = None) -> None:
        """A message from the page on `socket`. A socket replaced by a newer one (closed with REPLACED) no
        longer acts for its agent: what it sent after the newer one attached is dropped."""
        human = self.humans[agent_id]
        if socket is not None and not human.channel.is_attached(socket):
            return
        try:
            await human.receive(frame)
        except NotYourTurn:
            await human.channel.send_ephemeral(ErrorFrame(
                code="not_your_turn", client_id=frame.client_id,
                message="It is not your turn yet; your message was not sent. Wait for your turn, then send it.",
            ).model_dump())

    async def submit(self, agent_id: str) -> None:
        state = self.states[agent_id]
        if state == S.SUBMITTED:
            return
        if state in SUBMITTABLE_STATES or state in (S.TIMED_OUT, S.DISCONNECTED):
            await self.move(agent_id, S.SUBMITTED)
            return
        await self.humans[agent_id].channel.send_ephemeral(ErrorFrame(
            code="not_submittable", message="This HIT cannot be submitted yet: finish the task first.",
        ).model_dump())

    # ---- state changes ------------------------------------------------------------------------

    async def move(
        self, agent_id: str, target: AgentState, *, text: str | None = None,
        role: str | None = None, conversation_id: str | None = None,
    ) -> bool:
        """Persist a state change and put it on the agent's stream. False if the move is no longer legal.

        Raises LeaseLost when this process no longer owns the run: another may be acting on it."""
        if not self.fence(self.id) and not await self._fence_back():
            raise LeaseLost(self.id)
        human = self.humans[agent_id]

        async def write(events: Any, on_commit: Any) -> None:
            await self.store.set_state(
                agent_id, target, events=events, role=role, conversation_id=conversation_id, on_commit=on_commit
            )

        try:
            await human.channel.emit([_state_payload(target, text)], write=write)
        except IllegalTransition:
            return False
        self._set_state(agent_id, target)
        if target not in LIVE_STATES:
            human.end_turn(f"the agent is {target}")
            self.waiting.leave(agent_id)
        if target in SUBMITTABLE_STATES:
            self._start_deadline(agent_id, self.task.timeouts.submission)
        elif (deadline := self._deadlines.pop(agent_id, None)) is not None:
            deadline.cancel()  # submitted (or returned) in time
        await self.notify("state", {"agent_id": agent_id, "worker_id": self.workers[agent_id], "state": target})
        self._release_if_gone(agent_id)
        return True

    async def _fence_back(self) -> bool:
        """The lease is not known to be in time: a renewal that is late (a busy machine, a slow commit) and
        not lost. Wait for the ownership pass to renew it rather than strand the worker whose move this is;
        if the lease went to another instance, the pass stops this run, which cancels this wait."""
        deadline = asyncio.get_running_loop().time() + FENCE_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            if self.fence(self.id):
                return True
        return False

    def _set_state(self, agent_id: str, state: AgentState) -> None:
        self.states[agent_id] = state
        if state in ARRIVING_STATES:
            self.arriving.add(agent_id)
        else:
            self.arriving.discard(agent_id)

    async def depart(self, agent_id: str, state: AgentState, text: str | None = None) -> None:
        """An agent leaves for good (disconnected, timed out, returned): end whatever it was in."""
        current = self.states.get(agent_id)
        if current == S.IN_TASK:
            await self.host.agent_left(agent_id, state, text)
            return
        if current == S.ONBOARDING:
            lifecycle = self._lifecycles.get(agent_id)
            if lifecycle is not None and lifecycle is not asyncio.current_task():
                lifecycle.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lifecycle
        if current in LIVE_STATES:
            await self.move(agent_id, state, text=text)

    # ---- the submission bound ----------------------------------------------------------------

    def _start_deadline(self, agent_id: str, delay: float) -> None:
        old = self._deadlines.pop(agent_id, None)
        if old is not None:
            old.cancel()
        self._deadlines[agent_id] = self.supervisor.spawn(
            self._deadline(agent_id, max(0.0, delay)), name=f"submission:{agent_id}"
        )

    async def _deadline(self, agent_id: str, delay: float) -> None:
        """A worker whose work is over has `Timeouts.submission` to submit; then the agent expires, and its
        page says so. The agent need not stay in memory meanwhile: the row says whether it submitted."""
        await asyncio.sleep(delay)
        del self._deadlines[agent_id]
        row = await self.store.get_agent(agent_id)
        if row is None or row.state not in SUBMITTABLE_STATES:
            return
        await self._load(row)
        try:
            await self.move(agent_id, S.EXPIRED, text=submission_expired_text(self.task.timeouts.submission))
        finally:
            self._release_if_gone(agent_id)

    # ---- releasing agents that left ----------------------------------------------------------

    def _lifecycle_done(self, agent_id: str) -> None:
        self._lifecycles.pop(agent_id, None)
        self._release_if_gone(agent_id)

    def _release_if_gone(self, agent_id: str) -> None:
        """Forget an agent this process holds no work for: out of the live states, no socket, no timer or
        lifecycle of its own, no conversation still running. Its row and stream stay in the store, and
        everything that needs it again (a page reconnecting to submit, a review) loads it through `_load`,
        so a run's memory holds its live agents, not every agent it ever had."""
        human = self.humans.get(agent_id)
        if (
            human is None or self.states.get(agent_id) in LIVE_STATES or human.channel.attached
            or agent_id in self._graces or agent_id in self._lifecycles or human.conversation_id in self.host.live
        ):
            return
        del self.humans[agent_id], self.states[agent_id], self.workers[agent_id]
        self.rate_limits.release(agent_id)

    # ---- onboarding, then the waiting room ----------------------------------------------------

    async def _lifecycle(self, agent_id: str) -> None:
        if self.states[agent_id] == S.JOINED and not await self._take_up(agent_id):
            return
        if self.states[agent_id] == S.ONBOARDING:
            if not await self._passes_onboarding(agent_id):
                return
            if not await self.move(agent_id, S.WAITING, text=self._waiting_text()):
                return
        await self.waiting.admit(agent_id)

    async def _take_up(self, agent_id: str) -> bool:
        """The agent's page has connected: its claim becomes one of the worker's open assignments (into
        onboarding, or straight to waiting) if the per-worker caps leave room; otherwise the page is told why
        and closed, and the claim stays a claim until its grace runs out. Under the worker's join lock, with
        the move, so two claims of one worker connecting at once cannot both be taken up."""
        worker_id = self.workers[agent_id]
        async with self._join_locks.setdefault(worker_id, asyncio.Lock()):
            refusal = await self._worker_cap_refusal(worker_id)
            if refusal is not None:
                channel = self.humans[agent_id].channel
                await channel.send_ephemeral(ErrorFrame(code=refusal.code, message=refusal.message).model_dump())
                await channel.close(CloseCode.FORBIDDEN, refusal.message[:120])
                self._start_grace(agent_id)
                return False
            if await self._needs_onboarding(worker_id):
                return await self.move(agent_id, S.ONBOARDING)
            return await self.move(agent_id, S.WAITING, text=self._waiting_text())

    def _waiting_text(self) -> str | None:
        return "Getting your task ready..." if len(self.task.roles) == 1 else None

    async def _needs_onboarding(self, worker_id: str) -> bool:
        if self.task.onboarding is None:
            return False
        result = await self.store.onboarding_result(worker_id, task_name=self.task.name)
        return result is None or not result.passed

    async def _passes_onboarding(self, agent_id: str) -> bool:
        onboarding = self.task.onboarding
        worker_id = self.workers[agent_id]
        if onboarding is None or not await self._needs_onboarding(worker_id):
            return True  # passed in another assignment meanwhile, or before a restart
        human = self.humans[agent_id]
        conv = await self.store.create_conversation(Conversation(
            id=new_id(), run_id=self.id, kind="onboarding", state=C.RUNNING, participants={"worker": agent_id},
        ))
        human.enter(role="worker", conversation_id=conv.id)

        async def save(data: dict[str, Any]) -> None:
            await self.store.save_world_data(conv.id, run_id=self.id, data=data)

        world = self.task.build_onboarding(human, saver=save)
        try:
            await asyncio.wait_for(world.run(), self.task.timeouts.onboarding)
        except (AgentTimeout, TimeoutError):
            await self.store.end_conversation(conv.id, state=C.PARTNER_LEFT, reason="worker timed out")
            await self.move(agent_id, S.TIMED_OUT)
            return False
        except Exception:
            log.exception("onboarding world of run %s failed for agent %s", self.id, agent_id,
                          extra={"run_id": self.id, "agent_id": agent_id})
            await self.store.end_conversation(conv.id, state=C.FAILED, reason="onboarding world raised")
            await self.move(agent_id, S.CLOSED, text=(
                "Something went wrong on our side during the qualification task. "
                "You can submit the HIT now and will be paid for it."
            ))
            return False
        passed = bool(world.passed)
        await self.store.record_onboarding(worker_id, task_name=self.task.name, passed=passed)
        await self.notify("onboarding", {"worker_id": worker_id, "passed": passed})
        await self.store.end_conversation(conv.id, state=C.COMPLETED, reason="passed" if passed else "failed")
        if not passed:
            await self.move(agent_id, S.ONBOARDING_FAILED)
        return passed


def _state_payload(state: AgentState, text: str | None = None) -> dict[str, Any]:
    return StateEvent(state=state, text=text or STATE_TEXT[state], can_submit=state in SUBMITTABLE_STATES).model_dump()
