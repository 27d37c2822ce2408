"""``POST /sandbox/mturk``: MTurk's requester API over AWS JSON 1.1, for boto3 with any credentials."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from server.sandbox.core import Sandbox
from server.sandbox.errors import MTurkError, RequestError
from server.sandbox.validation import TARGET_PREFIX, operation_names

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 4 * 1024 * 1024


def _answer(body: object, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, media_type=CONTENT_TYPE)


def requester_routes(sandbox: Sandbox) -> APIRouter:
    router = APIRouter()

    @router.post("/sandbox/mturk", include_in_schema=False)
    async def requester_api(request: Request) -> Response:
        prefix, _, operation = request.headers.get("x-amz-target", "").partition(".")
        if prefix != TARGET_PREFIX or operation not in operation_names():
            unknown = {"__type": "UnknownOperationException", "Message": f"Unknown operation '{operation}'."}
            return _answer(unknown, 400)
        body = await request.body()
        try:
            if len(body) > MAX_BODY_BYTES:
                raise RequestError(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
            try:
                params = json.loads(body or b"{}")
            except (ValueError, UnicodeDecodeError) as error:
                raise RequestError(f"The request body is not valid JSON: {error}") from error
            return _answer(sandbox.call(operation, params))
        except MTurkError as error:
            return _answer(error.body(), error.http_status)

    return router
