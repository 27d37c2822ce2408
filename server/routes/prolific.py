"""Where a Prolific participant goes when the task is over: Prolific's completion URL with the study's code.

The page asks (with its agent token) before it submits; the server picks the code from the agent's state,
so the code says what happened: the work was completed, or the participant is to be paid without having
completed it (a partner left, the wait ran out, the requester closed the run). Codes are never shown
before the work is over.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from server.claims import Refusal
from server.deps import RunTaskDep, SettingsDep, StoreDep
from server.prolific_wiring import completion_url
from server.providers.prolific import codes_for
from server.states import AgentState
from server.store import Store
from server.tokens import TokenError, TokenSigner

router = APIRouter()
S = AgentState
COMPLETED = frozenset({S.DONE})
PAID_INCOMPLETE = frozenset({S.PARTNER_LEFT, S.WAITING_EXPIRED, S.CLOSED})
AFTER = frozenset({S.SUBMITTED, S.APPROVED, S.REJECTED})


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=2048)


class CompletionReply(BaseModel):
    url: str
    completed: bool  # False: paid without completing


async def _signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer


async def ended_in(store: Store, agent_id: str, current: AgentState) -> AgentState:
    """The state the agent's work ended in: its state now, or the last one before it submitted."""
    if current not in AFTER:
        return current
    ended = current
    for _, event in await store.events_after(agent_id, 0):
        if event.get("type") == "state" and AgentState(event["state"]) not in AFTER:
            ended = AgentState(event["state"])
    return ended


@router.post("/task/{run_id}/prolific/complete")
async def complete(
    run: RunTaskDep, body: CompletionRequest, settings: SettingsDep, store: StoreDep,
    signer: Annotated[TokenSigner, Depends(_signer)],
) -> CompletionReply:
    try:
        claim = signer.verify(body.token)
    except TokenError as exc:
        raise Refusal("bad_token", str(exc), 401) from None
    agent = await store.get_agent(claim.agent_id)
    if claim.run_id != run.id or agent is None:
        raise Refusal("bad_token", "This token is for another task. Reload the study page.", 401)
    state = await ended_in(store, agent.id, AgentState(agent.state))
    codes = codes_for(run.id)
    if state in COMPLETED:
        code, completed = codes.done, True
    elif state in PAID_INCOMPLETE:
        code, completed = codes.paid_incomplete, False
    else:
        raise Refusal(
            "not_finished", f"Your part of this task is not over ({state.value}); keep this page open.", 409
        )
    return CompletionReply(url=f"{completion_url(settings)}?cc={code}", completed=completed)
