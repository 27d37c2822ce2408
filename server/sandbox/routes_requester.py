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
MAX_DEPTH = 32  # MTurk's deepest parameter (a qualification requirement's locale values) is 4 levels down


def _answer(body: object, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, media_type=CONTENT_TYPE)


def _depth(value: object) -> int:
    """How deeply `value` nests lists and objects, without recursing (a hostile body may nest thousands)."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children:
            deepest = max(deepest, depth)
            level.extend((child, depth + 1) for child in children)
    return deepest


def _parameters(body: bytes) -> object:
    too_deep = f"The request body is nested more than {MAX_DEPTH} levels deep."
    try:
        params = json.loads(body or b"{}")
    except RecursionError as error:
        raise RequestError(too_deep) from error
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(f"The request body is not valid JSON: {error}") from error
    if _depth(params) > MAX_DEPTH:
        raise RequestError(too_deep)
    return params


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
            return _answer(sandbox.call(operation, _parameters(body)))
        except MTurkError as error:
            return _answer(error.body(), error.http_status)

    return router
