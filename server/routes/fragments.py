"""A task's own page fragments, one per role (`Task(ui={role: "fragment.html"})`), for the worker page.

Only what the task declared is served: the role is a key into the task's declaration, never a path, so
nothing else on disk can be reached from here. The fragment was read and checked when the task was built.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from server.deps import NotFound, RunTask, RunTaskDep
from worlds.base import RoleUI

router = APIRouter()


class RoleFragment(BaseModel):
    role: str
    html: str
    stylesheet: str | None  # the URL of the fragment's CSS, when it has one


def _declared(run: RunTask, role: str) -> RoleUI:
    ui = run.task.ui_for(role)
    if ui is None:
        declared = ", ".join(sorted(run.task.ui)) or "none"
        raise NotFound("unknown_fragment", f"Task run {run.id!r} has no page fragment for role {role!r} "
                                           f"(roles with one: {declared}).")
    return ui


@router.get("/task/{run_id}/ui/{role}")
async def role_fragment(run: RunTaskDep, role: str) -> RoleFragment:
    ui = _declared(run, role)
    stylesheet = f"/task/{quote(run.id, safe='')}/ui/{quote(role, safe='')}/style.css" if ui.css is not None else None
    return RoleFragment(role=role, html=ui.html, stylesheet=stylesheet)


@router.get("/task/{run_id}/ui/{role}/style.css", include_in_schema=False)
async def role_stylesheet(run: RunTaskDep, role: str) -> Response:
    ui = _declared(run, role)
    if ui.css is None:
        raise NotFound("unknown_fragment", f"The page fragment of role {role!r} has no stylesheet.")
    return Response(ui.css, media_type="text/css")
