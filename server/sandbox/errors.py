"""The sandbox's two error families: MTurk API errors and worker-site refusals.

MTurk answers every client error as ``RequestError`` (HTTP 400) and internal faults as ``ServiceFault``;
each message ends with a request stamp ``(<epoch ms> s)``. Worker-site refusals are Parley's own
``{"error": {"code", "message"}}`` shape.
"""

from __future__ import annotations

import time
from typing import Any


class MTurkError(Exception):
    """An error answered on the requester API exactly as MTurk shapes it."""

    error_type = "RequestError"
    http_status = 400

    def __init__(self, message: str, turk_error_code: str = "AWS.MechanicalTurk.InvalidParameterValue"):
        super().__init__(message)
        self.message = message
        self.turk_error_code = turk_error_code

    def body(self) -> dict[str, Any]:
        stamp = int(time.time() * 1000)
        return {
            "__type": self.error_type,
            "Message": f"{self.message} ({stamp} s)",
            "TurkErrorCode": self.turk_error_code,
        }


class RequestError(MTurkError):
    """A client error: bad parameters, unknown ids, an operation not allowed in the current state."""


class ServiceFault(MTurkError):
    """An internal fault of the sandbox itself."""

    error_type = "ServiceFault"
    http_status = 500


class SandboxElsewhere(MTurkError):
    """Another Parley process on this data directory serves the built-in sandbox (it holds its state file)."""

    error_type = "ServiceUnavailable"
    http_status = 503

    def __init__(self) -> None:
        super().__init__(
            "The built-in MTurk sandbox of this data directory is served by another Parley process on it; "
            "use that process's address (`parley status` lists the instances), or stop it.",
            "ServiceUnavailable",
        )


class WorkerRefusal(Exception):
    """The worker site refuses an action; ``code`` is stable, ``message`` is for a person."""

    def __init__(self, code: str, message: str, http_status: int = 409):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def hit_not_found(hit_id: str) -> RequestError:
    return RequestError(f"Hit {hit_id} does not exist.", "AWS.MechanicalTurk.HITDoesNotExist")


def assignment_not_found(assignment_id: str) -> RequestError:
    return RequestError(f"Assignment {assignment_id} does not exist.", "AWS.MechanicalTurk.AssignmentDoesNotExist")


def qualification_type_not_found(type_id: str) -> RequestError:
    return RequestError(
        f"QualificationType {type_id} does not exist.",
        "AWS.MechanicalTurk.QualificationTypeDoesNotExist",
    )


def bad_assignment_state(allowed: str) -> RequestError:
    return RequestError(
        f"This operation can be called with a status of: {allowed}",
        "AWS.MechanicalTurk.InvalidAssignmentState",
    )


def bad_hit_state(current: str, allowed: str) -> RequestError:
    return RequestError(
        f"This HIT is currently in the state '{current}'.  This operation can be called with a status of: {allowed}",
        "AWS.MechanicalTurk.InvalidHITState",
    )
