"""Claims on assignments: which page may join an assignment again, and what the per-worker caps count.

MTurk cannot confirm an assignment when its page joins, so a join is a claim on (worker id, assignment id)
by whoever sends it. The first claim of an assignment makes its agent; the page that made it keeps a resume
key (the page makes one, or the join reply gives it), and only a join presenting that key is given a token
for the agent again. The agent's id is this server's MAC of (run, assignment, key): checking a key needs no
stored secret, and the same key sent twice (a join retried after its reply was lost) names the same agent.

Agents made before resume keys existed have plain hex ids; their assignments take any join of their worker,
as before.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from server.store import AgentRow, Store
from server.tokens import TokenSigner
from worlds.base import Caps


@dataclass(frozen=True)
class Admission:
    """A join taken: the agent, a token for its socket, and the resume key that joins its assignment again."""

    agent: AgentRow
    token: str
    resume_key: str


ASSIGNMENT_IN_USE_TEXT = (
    "This assignment is already open in another browser or window. Continue there. "
    "If you cannot, please return this HIT."
)


class Refusal(Exception):
    """A join the run will not take, with a message the page shows the worker."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


CLAIMED = "k"  # leads every agent id made from a resume key; never a hex digit, so older ids are told apart


def new_resume_key() -> str:
    return secrets.token_urlsafe(24)


def agent_id_for(signer: TokenSigner, *, run_id: str, assignment_id: str, resume_key: str) -> str:
    """The id of the agent a claim with `resume_key` makes (or resumes) for this assignment."""
    return CLAIMED + signer.mac(f"claim\n{run_id}\n{assignment_id}\n{resume_key}")[:31]


def resumes(agent_id: str, claimed_id: str) -> bool:
    """A claim whose key gives `claimed_id` may have a token for the agent `agent_id` of its assignment."""
    return agent_id == claimed_id or not agent_id.startswith(CLAIMED)


async def worker_cap_refusal(store: Store, caps: Caps, *, worker_id: str, run_id: str) -> Refusal | None:
    """The per-worker caps, counting what the worker has shown to be real: assignments whose page
    connected, and units of work (docs/protocol.md, "Claims"). A bare join counts for neither."""
    units, open_ = await store.worker_agents_in_run(worker_id, run_id=run_id)
    if open_ >= caps.per_worker_concurrent:
        return Refusal(
            "too_many_concurrent",
            f"You already have {open_} assignment(s) of this task open. Finish or return it first, "
            "then reload this page.",
            409,
        )
    if units >= caps.per_worker_total:
        return Refusal(
            "worker_limit",
            f"You have reached this task's limit of {caps.per_worker_total} assignments per worker. "
            "Thank you! Please return this HIT.",
        )
    return None
