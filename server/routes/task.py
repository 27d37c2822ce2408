"""The worker's HTTP side: the task page (preview and work), task info, and joining."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.deps import RunDep, SettingsDep
from server.protocol import JoinReply, JoinRequest, TaskInfo
from server.states import describe_states

router = APIRouter()
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


@router.get("/task/{run_id}", include_in_schema=False)
async def task_page(run: RunDep) -> FileResponse:
    # The page reads MTurk's query parameters itself: preview when assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE.
    return FileResponse(FRONTEND / "task.html", media_type="text/html")


@router.get("/task/{run_id}/info")
async def task_info(run: RunDep, settings: SettingsDep) -> TaskInfo:
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
async def join(run: RunDep, body: JoinRequest) -> JoinReply:
    admitted = await run.join(body)
    agent = admitted.agent
    return JoinReply(
        agent_id=agent.id, token=admitted.token, ws_path="/ws", state=run.states.get(agent.id, agent.state),
        resume_key=admitted.resume_key,
    )
