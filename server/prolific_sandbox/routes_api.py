"""The requester API under ``/sandbox/prolific/api/v1``, on Prolific's paths and shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from server.prolific_sandbox import bonuses, studies, submissions
from server.prolific_sandbox.core import ProlificSandbox
from server.prolific_sandbox.errors import ProlificError, bad_request, unauthorized
from server.prolific_sandbox.model import USER_ID, WORKSPACE_ID, ProlificState, Study
from server.prolific_sandbox.money import balance


def _page(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"results": results, "_links": {"next": {"href": None}, "previous": {"href": None}},
            "meta": {"count": len(results)}}


def api_routes(sandbox: ProlificSandbox) -> APIRouter:
    router = APIRouter(prefix="/sandbox/prolific/api/v1", include_in_schema=False)

    async def answer(request: Request, op: Callable[[ProlificState, float, dict[str, Any]], Any],
                     status: int = 200) -> Response:
        try:
            header = request.headers.get("authorization", "")
            if not header.startswith("Token ") or not header[6:].strip():
                raise unauthorized()
            body: dict[str, Any] = {}
            raw = await request.body()
            if raw:
                try:
                    body = bonuses.json_object(json.loads(raw))
                except json.JSONDecodeError:
                    raise bad_request("The request body is not valid JSON.") from None
            result = sandbox.run(lambda state, now: op(state, now, body))
        except ProlificError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result, status_code=status)

    def view(study: Study, state: ProlificState) -> dict[str, Any]:
        return study.view(state.taken(study.id))

    @router.get("/users/me/")
    async def me(request: Request) -> Response:
        return await answer(request, lambda s, n, b: {"id": USER_ID, "current_project_id": WORKSPACE_ID,
                                                       "available_balance": balance(s, n)["available_balance"]})

    @router.get("/workspaces/")
    async def workspaces(request: Request) -> Response:
        return await answer(request, lambda s, n, b: _page([{"id": WORKSPACE_ID, "title": "Parley (built-in)"}]))

    @router.get("/workspaces/{workspace_id}/balance/")
    async def workspace_balance(request: Request, workspace_id: str) -> Response:
        def op(s: ProlificState, n: float, b: dict[str, Any]) -> Any:
            if workspace_id != WORKSPACE_ID:
                raise ProlificError(404, 140400, "Not found", f"No workspace with id {workspace_id}.")
            return balance(s, n)
        return await answer(request, op)

    @router.post("/studies/")
    async def create_study(request: Request) -> Response:
        return await answer(request, lambda s, n, b: view(studies.create(s, b, n), s), 201)

    @router.get("/studies/")
    async def list_studies(request: Request) -> Response:
        status = request.query_params.get("state")
        return await answer(request, lambda s, n, b: _page([view(x, s) for x in studies.listing(s, status)]))

    @router.get("/studies/{study_id}/")
    async def get_study(request: Request, study_id: str) -> Response:
        return await answer(request, lambda s, n, b: view(studies.study(s, study_id), s))

    @router.patch("/studies/{study_id}/")
    async def update_study(request: Request, study_id: str) -> Response:
        return await answer(request, lambda s, n, b: view(studies.update(s, study_id, b, n), s))

    @router.post("/studies/{study_id}/transition/")
    async def transition_study(request: Request, study_id: str) -> Response:
        return await answer(request, lambda s, n, b: view(studies.transition(s, study_id, b.get("action"), n), s))

    @router.get("/studies/{study_id}/submissions/")
    async def study_submissions(request: Request, study_id: str) -> Response:
        return await answer(request, lambda s, n, b: _page([x.view() for x in submissions.of_study(s, study_id)]))

    @router.get("/submissions/{submission_id}/")
    async def get_submission(request: Request, submission_id: str) -> Response:
        return await answer(request, lambda s, n, b: submissions.submission(s, submission_id).view())

    @router.post("/submissions/{submission_id}/transition/")
    async def transition_submission(request: Request, submission_id: str) -> Response:
        return await answer(request, lambda s, n, b: submissions.transition(s, submission_id, b, n).view())

    @router.post("/submissions/bonus-payments/")
    async def create_bonus(request: Request) -> Response:
        return await answer(request, lambda s, n, b: bonuses.create(s, b, n).view(), 201)

    @router.post("/bulk-bonus-payments/{bonus_id}/pay/")
    async def pay_bonus(request: Request, bonus_id: str) -> Response:
        def op(s: ProlificState, n: float, b: dict[str, Any]) -> dict[str, Any]:
            bonuses.pay(s, bonus_id, n)
            return {}  # Prolific accepts the payment (202) and makes it asynchronously
        return await answer(request, op, 202)

    @router.post("/participant-groups/")
    async def create_group(request: Request) -> Response:
        return await answer(request, lambda s, n, b: bonuses.create_group(s, b).view(), 201)

    @router.get("/participant-groups/")
    async def list_groups(request: Request) -> Response:
        return await answer(request, lambda s, n, b: _page([g.view() for g in s.groups.values()]))

    @router.get("/participant-groups/{group_id}/participants/")
    async def group_members(request: Request, group_id: str) -> Response:
        return await answer(request, lambda s, n, b: _page(bonuses.members(bonuses.group(s, group_id))))

    @router.post("/participant-groups/{group_id}/participants/")
    async def add_members(request: Request, group_id: str) -> Response:
        return await answer(request, lambda s, n, b: _page(bonuses.members(bonuses.add(s, group_id, b))))

    @router.delete("/participant-groups/{group_id}/participants/")
    async def remove_members(request: Request, group_id: str) -> Response:
        return await answer(request, lambda s, n, b: _page(bonuses.members(bonuses.remove(s, group_id, b))))

    return router
