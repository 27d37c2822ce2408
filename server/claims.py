"""Claims on assignments: which page may join an assignment again.

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

from server.tokens import TokenSigner

CLAIMED = "k"  # leads every agent id made from a resume key; never a hex digit, so older ids are told apart


def new_resume_key() -> str:
    return secrets.token_urlsafe(24)


def agent_id_for(signer: TokenSigner, *, run_id: str, assignment_id: str, resume_key: str) -> str:
    """The id of the agent a claim with `resume_key` makes (or resumes) for this assignment."""
    return CLAIMED + signer.mac(f"claim\n{run_id}\n{assignment_id}\n{resume_key}")[:31]


def resumes(agent_id: str, claimed_id: str) -> bool:
    """A claim whose key gives `claimed_id` may have a token for the agent `agent_id` of its assignment."""
    return agent_id == claimed_id or not agent_id.startswith(CLAIMED)
