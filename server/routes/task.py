"""The worker's HTTP side: the task page (preview and work), task info, and joining."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from server.deps import RunsDep, RunTaskDep, SettingsDep, unknown_run
from server.protocol import JoinReply, JoinRequest, TaskInfo
from server.relay import OwnerUnavailable, Relay
from server.runner import Run
from server.states import describe_states

router = APIRouter()
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


@router.get("/task/{run_id}", include_in_schema=False)
async def task_page(run: RunTaskDep) -> FileResponse:
    # The page reads MTurk's query parameters itself: preview when assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE.
    return FileResponse(FRONTEND / "task.html", media_type="text/html")


@router.get("/task/{run_id}/info")
async def task_info(run: RunTaskDep, settings: SettingsDep) -> TaskInfo:
    task = run.task
    return TaskInfo(
        run_id=run.id,
        title=task.title,
        description=task.description,
        reward=task.reward,
        roles=task.roles,
        states=describe_states(),
        limits={
            "max_message_chars": settings.max_message_chars,
            "max_frame_bytes": settings.max_frame_bytes,
            "heartbeat_ms": int(settings.heartbeat_s * 1000),
        },
    )


@router.post("/task/{run_id}/join")
async def join(run_id: str, body: JoinRequest, runs: RunsDep, request: Request) -> JoinReply:
    """A join runs on the run's owner: here, or (several instances) forwarded to the instance that owns it."""
    run = runs.get(run_id)
    if run is not None:
        return await join_here(run, body)
    relay: Relay = request.app.state.relay
    if relay.shared:
        try:
            return JoinReply.model_validate(await relay.call(run_id, "join", body.model_dump()))
        except LookupError:
            pass
        except OwnerUnavailable:
            raise HTTPException(503, "The server for this task is changing over. Try again in a few seconds; "
                                     "the page retries by itself.") from None
    raise unknown_run(run_id)


async def join_here(run: Run, body: JoinRequest) -> JoinReply:
    admitted = await run.join(body)
    agent = admitted.agent
    return JoinReply(
        agent_id=agent.id, token=admitted.token, ws_path="/ws", state=run.states.get(agent.id, agent.state),
        resume_key=admitted.resume_key,
    )


async def join_relayed(run: Run, body: dict[str, Any]) -> dict[str, Any]:
    """A join another instance forwarded here, the run's owner (server/relay.py)."""
    return (await join_here(run, JoinRequest.model_validate(body))).model_dump()
