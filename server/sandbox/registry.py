"""The table of requester operations and the context each handler works in.

A handler takes the validated request parameters and returns MTurk's response structure; it raises
``RequestError`` to refuse. Handlers registered with ``mutates=False`` never change the state, so the
sandbox persists only after the others.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.sandbox.errors import (
    RequestError,
    assignment_not_found,
    hit_not_found,
    qualification_type_not_found,
)
from server.sandbox.lifecycle import balance
from server.sandbox.model import (
    HIT,
    REQUESTER_VISIBLE,
    Assignment,
    QualificationType,
    SandboxState,
    UsedToken,
)
from server.sandbox.money import format_cents

TOKEN_LIFETIME_SECONDS = 24 * 3600
_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_id(prefix: str = "3", length: int = 30) -> str:
    """An id shaped like MTurk's: 30 upper-case letters and digits."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length - len(prefix)))


@dataclass
class Ctx:
    state: SandboxState
    now: float

    def hit(self, hit_id: str) -> HIT:
        hit = self.state.hits.get(hit_id)
        if hit is None:
            raise hit_not_found(hit_id)
        return hit

    def assignment(self, assignment_id: str) -> Assignment:
        """A submitted, approved or rejected assignment: the only kinds MTurk shows a requester."""
        assignment = self.state.assignments.get(assignment_id)
        if assignment is None or assignment.status not in REQUESTER_VISIBLE:
            raise assignment_not_found(assignment_id)
        return assignment

    def qualification_type(self, type_id: str) -> QualificationType:
        record = self.state.qualification_types.get(type_id)
        if record is None:
            raise qualification_type_not_found(type_id)
        return record

    def refuse_used_token(self, scope: str, token: str | None) -> None:
        """MTurk's idempotency: a token seen in the last 24 hours is refused, naming what it produced."""
        if token is None:
            return
        used = self.state.tokens.get(f"{scope}/{token}")
        if used is None or self.now - used.time >= TOKEN_LIFETIME_SECONDS:
            return
        code = "AWS.MechanicalTurk.HitAlreadyExists" if scope == "CreateHIT" else "AWS.MechanicalTurk.DuplicateRequest"
        raise RequestError(
            f'The idempotency token "{token}" has already been processed. '
            f"{used.operation} already produced {used.result_id}.",
            code,
        )

    def remember_token(self, scope: str, token: str | None, operation: str, result_id: str) -> None:
        if token is not None:
            self.state.tokens[f"{scope}/{token}"] = UsedToken(operation=operation, result_id=result_id, time=self.now)

    def require_funds(self, cents: int) -> None:
        available = balance(self.state, self.now).available_cents
        if cents > available:
            raise RequestError(
                "This Requester has insufficient funds in their account to complete this transaction "
                f"(needs ${format_cents(cents)}, available ${format_cents(available)}).",
                "AWS.MechanicalTurk.InsufficientFunds",
            )


Handler = Callable[[Ctx, dict[str, Any]], dict[str, Any]]
OPERATIONS: dict[str, Handler] = {}
READ_ONLY: set[str] = set()


def operation(name: str, *, mutates: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS[name] = handler
        if not mutates:
            READ_ONLY.add(name)
        return handler

    return register


def check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high} (got {value}).")
