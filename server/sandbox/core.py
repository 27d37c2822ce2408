"""``Sandbox``: the emulator's state behind one lock, its requester operations and worker actions.

Every public method reads ``clock()`` once, applies what time has decided (``lifecycle.advance``), does
its work and, when anything changed, writes the state file before returning. A method that refuses
leaves the state as it was.
"""

from __future__ import annotations

import logging
import pathlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, Depends
from starlette.exceptions import HTTPException

from server.sandbox import ops_hits, ops_review, ops_workers, worker_actions, worker_sessions
from server.sandbox.errors import MTurkError, RequestError, SandboxElsewhere, ServiceFault, WorkerRefusal
from server.sandbox.lifecycle import advance, balance
from server.sandbox.model import Assignment, SandboxState
from server.sandbox.money import format_cents, parse_cents
from server.sandbox.persistence import StateLock, load_state, save_state
from server.sandbox.quals import LOCALE, SYSTEM_TYPES
from server.sandbox.registry import OPERATIONS, READ_ONLY, Ctx
from server.sandbox.validation import output_problems, validate_input

_REGISTERED = (ops_hits, ops_review, ops_workers)  # importing them fills OPERATIONS
log = logging.getLogger(__name__)
T = TypeVar("T")


class HeldElsewhere(HTTPException):
    """A request for the sandbox reached a process that does not serve it: 503, unless the app forwards it
    to the process that does (server/sandbox_proxy.py)."""

    def __init__(self) -> None:
        super().__init__(503, SandboxElsewhere().message)


class Sandbox:
    """The built-in MTurk. ``router`` serves it over HTTP; the methods serve Python callers and tests."""

    def __init__(self, *, state_path: pathlib.Path, clock: Callable[[], float], frontend_dir: pathlib.Path):
        self.state_path = state_path
        self.clock = clock
        self.frontend_dir = frontend_dir
        self.router = APIRouter(dependencies=[Depends(self._require_holder)])
        self._lock = threading.RLock()
        self._holder = StateLock(state_path)
        self._state = SandboxState()  # read from the file once this process holds it (`held`)

    @property
    def held(self) -> bool:
        """Whether this process serves the sandbox (holds its state file). Tries to take it over when the
        process that held it is gone, reading the state it left."""
        with self._lock:
            if self._holder.held:
                return True
            if not self._holder.try_acquire():
                return False
            self._state = load_state(self.state_path)
            log.info("this process now serves the built-in MTurk sandbox (%s)", self.state_path)
            return True

    def release(self) -> None:
        """Let another process on the data directory serve the sandbox (at shutdown)."""
        with self._lock:
            self._holder.release()

    async def _require_holder(self) -> None:
        if not self.held:
            raise HeldElsewhere()

    @contextmanager
    def _session(self, *, mutates: bool) -> Iterator[Ctx]:
        """The state at ``clock()``, saved afterwards if it changed; reloaded from disk after a fault."""
        with self._lock:
            if not self.held:
                raise SandboxElsewhere()
            ctx = Ctx(state=self._state, now=self.clock())
            changed = advance(ctx.state, ctx.now)
            try:
                yield ctx
            except (MTurkError, WorkerRefusal):
                if changed:
                    save_state(self.state_path, self._state)
                raise
            except BaseException:
                self._state = load_state(self.state_path)
                raise
            if changed or mutates:
                save_state(self.state_path, self._state)

    @property
    def state(self) -> SandboxState:
        """The live state, brought up to ``clock()``: for inspection, not for mutation."""
        with self._session(mutates=False) as ctx:
            return ctx.state

    def inspect(self, read: Callable[[SandboxState, float], T]) -> T:
        """``read(state, now)`` under the lock, for a consistent view; ``read`` must not change the state."""
        with self._session(mutates=False) as ctx:
            return read(ctx.state, ctx.now)

    def call(self, operation: str, params: Mapping[str, Any] | Any = None) -> dict[str, Any]:
        """Run one requester operation as ``POST /sandbox/mturk`` would; raises ``MTurkError``."""
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise RequestError(
                f"The Parley sandbox does not implement {operation}.",
                "AWS.MechanicalTurk.UnsupportedOperation",
            )
        request = validate_input(operation, dict(params) if isinstance(params, Mapping) else params or {})
        try:
            with self._session(mutates=operation not in READ_ONLY) as ctx:
                result = handler(ctx, request)
        except MTurkError:
            raise
        except Exception as error:
            log.exception("sandbox operation %s failed", operation)
            raise ServiceFault(f"The Parley sandbox failed on {operation}: {error}", "ServiceFault") from error
        problems = output_problems(operation, result)
        if problems:
            raise ServiceFault(f"The Parley sandbox answered {operation} off-model: {problems}", "ServiceFault")
        return result

    def accept(self, worker_id: str, hit_id: str) -> Assignment:
        with self._session(mutates=True) as ctx:
            return worker_actions.accept(ctx.state, worker_id, hit_id, ctx.now)

    def accept_from_group(self, worker_id: str, hit_type_id: str) -> Assignment:
        with self._session(mutates=True) as ctx:
            return worker_actions.accept_from_group(ctx.state, worker_id, hit_type_id, ctx.now)

    def return_assignment(self, assignment_id: str) -> Assignment:
        with self._session(mutates=True) as ctx:
            return worker_actions.return_assignment(ctx.state, assignment_id, ctx.now)

    def submit(
        self, assignment_id: str, answers: Mapping[str, str] | Iterable[tuple[str, str]], *,
        submit_key: str | None = None,
    ) -> Assignment:
        """Submit as the worker's form would: every answer becomes a FreeText answer in the Answer XML.

        Over HTTP the form's post carries the assignment's ``submit_key``; a Python caller needs none."""
        pairs = list(answers.items()) if isinstance(answers, Mapping) else list(answers)
        with self._session(mutates=True) as ctx:
            return worker_actions.submit(ctx.state, assignment_id, pairs, ctx.now, submit_key)

    def claim_worker(self, worker_id: str, session: str) -> None:
        """A worker-site browser session picks a worker id (see ``worker_sessions``)."""
        with self._session(mutates=True) as ctx:
            worker_sessions.claim_worker(ctx.state, worker_id, session)

    def check_holder(self, worker_id: str, session: str) -> None:
        with self._session(mutates=False) as ctx:
            worker_sessions.check_holder(ctx.state, worker_id, session)

    def visible_hits(self, worker_id: str) -> list[worker_actions.WorkerHit]:
        with self._session(mutates=False) as ctx:
            return worker_actions.visible_hits(ctx.state, worker_id, ctx.now)

    def worker_assignments(self, worker_id: str) -> list[Assignment]:
        with self._session(mutates=False) as ctx:
            return worker_actions.worker_assignments(ctx.state, worker_id)

    def work_url(self, assignment_id: str, sandbox_base: str) -> str:
        """The task page URL for an accepted assignment; ``sandbox_base`` is e.g. ``http://host/sandbox``."""
        with self._session(mutates=False) as ctx:
            assignment = worker_actions.find_assignment(ctx.state, assignment_id)
            return worker_actions.work_url(ctx.state, assignment, sandbox_base)

    def set_worker_locale(self, worker_id: str, country: str, subdivision: str | None = None) -> None:
        worker_actions.check_worker_id(worker_id)
        with self._session(mutates=True) as ctx:
            worker = ctx.state.worker(worker_id)
            worker.country, worker.subdivision = country, subdivision

    def set_system_qualification(self, worker_id: str, qualification_type_id: str, value: int | None) -> None:
        """Set (or with None, remove) a system qualification value such as approval rate or Masters."""
        if qualification_type_id not in SYSTEM_TYPES or qualification_type_id == LOCALE:
            raise ValueError(f"{qualification_type_id} is not a settable system qualification type")
        worker_actions.check_worker_id(worker_id)
        with self._session(mutates=True) as ctx:
            ctx.state.worker(worker_id).system_values[qualification_type_id] = value

    def set_funds(self, amount: str) -> None:
        """Set the account's deposits, e.g. ``"10000.00"``; the available balance is this minus spending."""
        cents = parse_cents(amount, "amount")
        with self._session(mutates=True) as ctx:
            committed = ctx.state.funds_cents - balance(ctx.state, ctx.now).available_cents
            if cents < committed:
                raise ValueError(f"funds must cover the ${format_cents(committed)} already spent or held")
            ctx.state.funds_cents = cents
