"""Signed agent tokens: bound to (run, worker, assignment, agent), with an expiry. HMAC-SHA256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class AgentClaim:
    run_id: str
    worker_id: str
    assignment_id: str
    agent_id: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: str, ttl_s: float) -> None:
        self._key = secret.encode()
        self.ttl_s = ttl_s

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def mac(self, text: str) -> str:
        """This server's MAC of `text` (base64url): for values only this server can make (see claims.py)."""
        return self._mac(text)

    def issue(self, *, run_id: str, worker_id: str, assignment_id: str, agent_id: str) -> str:
        claim = {"r": run_id, "w": worker_id, "a": assignment_id, "g": agent_id, "e": int(time.time() + self.ttl_s)}
        body = _b64(json.dumps(claim, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, *, now: float | None = None) -> AgentClaim:
        # A token is base64url text and a dot: anything else (a character outside ASCII, which the MAC
        # comparison cannot even take) is simply not a token Parley issued.
        body, _, mac = token.partition(".")
        if not token.isascii() or not body or not mac or not hmac.compare_digest(mac, self._mac(body)):
            raise TokenError("This link's token is not valid. Reload the HIT page to get a new one.")
        try:
            claim = json.loads(_unb64(body))
            result = AgentClaim(
                run_id=str(claim["r"]),
                worker_id=str(claim["w"]),
                assignment_id=str(claim["a"]),
                agent_id=str(claim["g"]),
                expires_at=float(claim["e"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("This link's token is malformed. Reload the HIT page.") from exc
        if result.expires_at < (time.time() if now is None else now):
            raise TokenError("This session has expired. Reload the HIT page to continue.")
        return result
