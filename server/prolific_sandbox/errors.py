"""Errors as Prolific answers them: an HTTP status and ``{"error": {"status", "error_code", "title", "detail"}}``."""

from __future__ import annotations

from typing import Any

# Prolific's error codes are six digits; these are the emulator's, grouped as Prolific groups its own.
BAD_REQUEST = 140100
VALIDATION = 140101
NOT_FOUND = 140400
UNAUTHORIZED = 140200
CONFLICT = 140900
INSUFFICIENT_FUNDS = 140102


class ProlificError(Exception):
    def __init__(self, status: int, error_code: int, title: str, detail: str | dict[str, list[str]]) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.error_code = error_code
        self.title = title
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": {
            "status": self.status, "error_code": self.error_code, "title": self.title, "detail": self.detail,
            "additional_information": f"/api/v1/errors/{self.error_code}",
        }}


def invalid(field: str, message: str) -> ProlificError:
    return ProlificError(400, VALIDATION, "Invalid request", {field: [message]})


def bad_request(message: str) -> ProlificError:
    return ProlificError(400, BAD_REQUEST, "Bad request", message)


def not_found(kind: str, ident: str) -> ProlificError:
    return ProlificError(404, NOT_FOUND, "Not found", f"No {kind} with id {ident}.")


def unauthorized() -> ProlificError:
    return ProlificError(
        401, UNAUTHORIZED, "Not authenticated", "Send the header 'Authorization: Token <your API token>'."
    )


class ParticipantRefusal(Exception):
    """What the participant site tells a person it cannot let them do (no place left, already taken part)."""
