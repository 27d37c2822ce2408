"""The dashboard page and its JSON API under /admin/api. Everything but logging in needs the admin credential."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from server.admin import views
from server.admin.actions import ReviewDesk, ReviewRefused, parse_amount
from server.admin.auth import COOKIE, SESSION_MAX_AGE_S, check_token, close_session, open_session, require_admin
from server.admin.requester import RequesterDesk
from server.deps import NotFound, RunsDep, StoreDep
from server.export import EXTENSIONS, MEDIA_TYPES, Format, export_run
from server.protocol import StoredText

ADMIN_PAGE = Path(__file__).resolve().parents[2] / "frontend" / "admin" / "index.html"

page = APIRouter()
session = APIRouter(prefix="/admin/api")
# Every route of `api` needs the admin credential: it is on the router, so no route can forget it.
api = APIRouter(prefix="/admin/api", dependencies=[Depends(require_admin)])


class Login(BaseModel):
    token: StoredText = Field(min_length=1, max_length=1024)


class Approval(BaseModel):
    feedback: StoredText = Field(default="", max_length=1024)


class Reason(BaseModel):
    reason: StoredText = Field(default="", max_length=1024)


class Bonus(BaseModel):
    # Checked by `parse_amount`, which says in words what is wrong (an empty amount too).
    amount: StoredText = Field(default="", max_length=64, description="dollars, e.g. 0.50")
    reason: StoredText = Field(default="", max_length=1024)
    key: StoredText = Field(default="", max_length=128, description="idempotency key: the same key pays once")


async def _desk(request: Request, store: StoreDep, runs: RunsDep) -> ReviewDesk:
    manager = getattr(request.app.state, "hits", None)  # the HIT manager, when main.py runs one
    studies = getattr(request.app.state, "studies", None)  # the Prolific study manager, when one runs
    return ReviewDesk(
        store=store, runs=runs, mturk=getattr(manager, "review", None), prolific=getattr(studies, "provider", None)
    )


DeskDep = Annotated[ReviewDesk, Depends(_desk)]


# ---- the page and the session -------------------------------------------------------------------


@page.get("/admin", include_in_schema=False)
@page.get("/admin/", include_in_schema=False)
async def admin_page() -> FileResponse:
    # A shell with a login form: no data until the API accepts the credential.
    return FileResponse(ADMIN_PAGE, media_type="text/html")


@session.post("/session")
async def log_in(body: Login, request: Request) -> JSONResponse:
    check_token(request, body.token, refusal="That is not the admin token.")
    reply = JSONResponse({"ok": True})
    reply.set_cookie(
        COOKIE, await open_session(request), max_age=SESSION_MAX_AGE_S, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )
    return reply


@session.delete("/session")
async def log_out(request: Request) -> JSONResponse:
    await close_session(request)  # the cookie is dead on the server, whatever the browser keeps
    reply = JSONResponse({"ok": True})
    reply.delete_cookie(COOKIE, path="/")
    return reply


# ---- reading ------------------------------------------------------------------------------------


@api.get("/whoami")
async def whoami() -> dict[str, Any]:
    return {"admin": True}


@api.get("/runs")
async def runs_list(store: StoreDep, runs: RunsDep) -> dict[str, Any]:
    return {"runs": await views.run_list(store=store, runs=runs)}


def _known_run(found: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    if found is None:
        raise NotFound("unknown_run", f"There is no run {run_id!r}.")
    return found


@api.get("/runs/{run_id}")
async def run_snapshot(run_id: str, store: StoreDep, runs: RunsDep) -> dict[str, Any]:
    return _known_run(await views.run_snapshot(store=store, runs=runs, run_id=run_id), run_id)


@api.get("/runs/{run_id}/form")
async def form_answers(run_id: str, store: StoreDep, runs: RunsDep) -> dict[str, Any]:
    return _known_run(await views.form_answers(store=store, runs=runs, run_id=run_id), run_id)


@api.get("/conversations/{conversation_id}")
async def conversation(conversation_id: str, store: StoreDep) -> dict[str, Any]:
    found = await views.transcript(store=store, conversation_id=conversation_id)
    if found is None:
        raise NotFound("unknown_conversation", f"There is no conversation {conversation_id!r}.")
    return found


@api.get("/runs/{run_id}/export")
async def export(
    run_id: str, store: StoreDep,
    format: Annotated[Format, Query()] = "jsonl",
    raw_worker_ids: Annotated[bool, Query()] = False,
) -> StreamingResponse:
    if await store.get_run(run_id) is None:
        raise NotFound("unknown_run", f"There is no run {run_id!r}.")
    name = f"{run_id}.{EXTENSIONS[format]}"
    return StreamingResponse(
        export_run(store, run_id, format, raw_worker_ids=raw_worker_ids), media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ---- review actions -----------------------------------------------------------------------------


@api.post("/agents/{agent_id}/approve")
async def approve(agent_id: str, body: Approval, desk: DeskDep) -> dict[str, Any]:
    return (await desk.approve(agent_id, feedback=body.feedback)).to_json()


@api.post("/agents/{agent_id}/reject")
async def reject(agent_id: str, body: Reason, desk: DeskDep) -> dict[str, Any]:
    return (await desk.reject(agent_id, reason=body.reason)).to_json()


@api.post("/agents/{agent_id}/bonus")
async def bonus(agent_id: str, body: Bonus, desk: DeskDep) -> dict[str, Any]:
    amount = parse_amount(body.amount)
    return (await desk.bonus(agent_id, amount_cents=amount, reason=body.reason, key=body.key)).to_json()


@api.post("/workers/{worker_id}/block")
async def block(worker_id: str, body: Reason, desk: DeskDep) -> dict[str, Any]:
    return (await desk.block(worker_id, reason=body.reason)).to_json()


@api.post("/runs/{run_id}/approve")
async def approve_run(run_id: str, body: Approval, desk: DeskDep, store: StoreDep) -> dict[str, Any]:
    if await store.get_run(run_id) is None:
        raise NotFound("unknown_run", f"There is no run {run_id!r}.")
    return await desk.approve_run(run_id, feedback=body.feedback)


# ---- requester actions beyond one agent (server/admin/requester.py) -------------------------------------


class Notification(BaseModel):
    worker_ids: list[Annotated[str, Field(max_length=128)]] = Field(min_length=1, max_length=100)
    subject: StoredText = Field(min_length=1, max_length=200)
    message: StoredText = Field(min_length=1, max_length=4096)


class Compensation(BaseModel):
    amount: StoredText = Field(min_length=1, max_length=16, description="dollars, e.g. 0.50")
    reason: StoredText = Field(default="", max_length=1024)
    run_id: StoredText = Field(default="", max_length=64, description="whose budget pays; default the worker's latest")
    key: StoredText = Field(default="", max_length=128)


def _requester(request: Request, store: StoreDep) -> RequesterDesk:
    return RequesterDesk(store=store, manager=getattr(request.app.state, "hits", None))


RequesterDep = Annotated[RequesterDesk, Depends(_requester)]


@api.post("/workers/{worker_id}/unblock")
async def unblock(worker_id: str, desk: RequesterDep) -> dict[str, Any]:
    return await desk.unblock(worker_id)


@api.post("/workers/notify")
async def notify(body: Notification, desk: RequesterDep) -> dict[str, Any]:
    return await desk.notify(body.worker_ids, body.subject, body.message)


@api.post("/workers/{worker_id}/compensate")
async def compensate(worker_id: str, body: Compensation, desk: RequesterDep) -> dict[str, Any]:
    return await desk.compensate(worker_id, amount=body.amount, reason=body.reason, run_id=body.run_id, key=body.key)


@api.post("/form-answers/{assignment_id}/approve")
async def approve_form_answer(assignment_id: str, body: Approval, desk: RequesterDep) -> dict[str, Any]:
    return await desk.review_form_answer(assignment_id, approve=True, text=body.feedback)


@api.post("/form-answers/{assignment_id}/reject")
async def reject_form_answer(assignment_id: str, body: Reason, desk: RequesterDep) -> dict[str, Any]:
    return await desk.review_form_answer(assignment_id, approve=False, text=body.reason)


__all__ = ["ReviewRefused", "api", "page", "session"]
