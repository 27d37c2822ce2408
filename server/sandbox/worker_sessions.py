"""Who may act as a worker on the worker site, and who may submit an assignment.

A browser picks a worker id (`POST /sandbox/worker/session`) and gets a cookie holding a random session
secret; the state keeps, per worker id, a hash of the secret of the browser that picked it first. Only that
browser then sees the worker's HITs, assignments and messages, accepts and returns as the worker. (One
browser may pick several ids; an id picked by another browser is refused.)

Submitting needs no cookie, because an HTMLQuestion posts from an opaque origin and an ExternalQuestion may
be a site of its own: each assignment has a random `submit_key`, carried in the `turkSubmitTo` the worker
site gives to the assignment's page only (`{sandbox}/submit/{key}`), so the page's usual post to
`turkSubmitTo + "/mturk/externalSubmit"` proves it was given the assignment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from server.sandbox.errors import WorkerRefusal
from server.sandbox.model import SandboxState
from server.sandbox.worker_actions import check_worker_id

COOKIE = "parley_sandbox_worker"
COOKIE_MAX_AGE_S = 30 * 24 * 3600


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def session_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest() if secret else ""


def claim_worker(state: SandboxState, worker_id: str, session: str) -> None:
    """This browser session picks `worker_id`, unless another browser picked it first."""
    check_worker_id(worker_id)
    holder = state.worker_sessions.get(worker_id)
    if holder is not None and not hmac.compare_digest(holder, session):
        raise WorkerRefusal(
            "worker_taken",
            f"Worker id {worker_id} is used in another browser. Pick another worker id here "
            "(a browser works as the worker ids it picked).",
            409,
        )
    state.worker_sessions[worker_id] = session


def check_holder(state: SandboxState, worker_id: str, session: str) -> None:
    """Refuse unless this browser session picked `worker_id`."""
    if not session:
        raise WorkerRefusal(
            "no_worker_session", "Pick a worker id on the worker site first (POST /sandbox/worker/session).", 401
        )
    holder = state.worker_sessions.get(worker_id)
    if holder is None or not hmac.compare_digest(holder, session):
        raise WorkerRefusal(
            "not_your_worker", f"This browser has not picked worker id {worker_id}: pick it on the worker site.", 403
        )

