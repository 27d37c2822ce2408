"""The worker site: the page, its JSON actions, HTMLQuestion pages and MTurk's externalSubmit."""

from __future__ import annotations

import html
import re
from typing import TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from server.sandbox import worker_views
from server.sandbox.core import Sandbox
from server.sandbox.errors import WorkerRefusal
from server.sandbox.forms import parse_form
from server.sandbox.question import PREVIEW_ASSIGNMENT_ID, parse_question
from server.sandbox.worker_actions import check_worker_id, find_assignment, find_hit
from server.sandbox.worker_sessions import COOKIE, COOKIE_MAX_AGE_S, new_session_secret, session_hash

MAX_JSON_BYTES = 16 * 1024
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
# The worker site frames task pages (any site), but nothing may frame it (clickjacking its Accept/Return).
_PAGE_POLICY = (
    "default-src 'self'; frame-src http: https:; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
)
# An HTMLQuestion is anyone's HTML (CreateHIT takes any credential). MTurk serves it from a domain of its own;
# here it gets an opaque origin: its scripts and form run, but it cannot read Parley's cookies or same-origin
# APIs (the admin API among them), nor navigate the page that frames it.
HTML_QUESTION_POLICY = "sandbox allow-scripts allow-forms; frame-ancestors 'self'; object-src 'none'; base-uri 'self'"
M = TypeVar("M", bound=BaseModel)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class AcceptRequest(BaseModel):
    """One HIT (`hit_id`), or any free HIT of a HIT group (`hit_type_id`, MTurk's "Accept & Work")."""

    model_config = ConfigDict(extra="forbid", strict=True)
    worker_id: str
    hit_id: str = ""
    hit_type_id: str = ""


class PickRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    worker_id: str


class ReturnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    assignment_id: str


def sandbox_base(request: Request) -> str:
    """``{scheme}://{host}/sandbox``: MTurk's turkSubmitTo for this sandbox."""
    return str(request.base_url).rstrip("/") + "/sandbox"


def _refused(error: WorkerRefusal) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.http_status)


def _session(request: Request) -> str:
    """The hash of this browser's worker-site session ("" without one)."""
    return session_hash(request.cookies.get(COOKIE, ""))


def _worker_id(request: Request, sandbox: Sandbox) -> str:
    """The ?worker_id= of the request, which this browser must have picked."""
    worker_id = request.query_params.get("worker_id")
    if not worker_id:
        raise WorkerRefusal("missing_parameter", "Add ?worker_id=... to the request.", 400)
    sandbox.check_holder(check_worker_id(worker_id), _session(request))
    return worker_id


async def _body(request: Request, model: type[M]) -> M:
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        raise WorkerRefusal("too_large", f"The request body is larger than {MAX_JSON_BYTES} bytes.", 413)
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        raise WorkerRefusal("bad_request", f"The request body is not valid: {problems}", 400) from error


def _page(
    title: str, text: str, *, status: str, assignment_id: str = "", code: int = 200, static: str = "../static"
) -> HTMLResponse:
    """A small result page; ``submitted.js`` tells a framing worker-site page about it."""
    title, text, status, assignment_id = map(html.escape, (title, text, status, assignment_id))
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><link rel='stylesheet' href='{static}/worker.css'></head>"
        f"<body class='result' data-status='{status}' data-assignment-id='{assignment_id}'"
        f" data-message='{text}'><main><h1>{title}</h1><p>{text}</p></main>"
        f"<script src='{static}/submitted.js'></script></body></html>"
    )
    return HTMLResponse(body, status_code=code)


def worker_routes(sandbox: Sandbox) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/sandbox/worker")
    async def worker_page() -> Response:
        page = (sandbox.frontend_dir / "index.html").read_bytes()
        headers = {"Content-Security-Policy": _PAGE_POLICY, "X-Frame-Options": "DENY"}
        return Response(page, media_type="text/html", headers=headers)

    @router.get("/sandbox/static/{name}")
    async def static_file(name: str) -> Response:
        path = sandbox.frontend_dir / name
        media_type = _STATIC_TYPES.get(path.suffix)
        if "/" in name or name.startswith(".") or media_type is None or not path.is_file():
            return _refused(WorkerRefusal("not_found", f"There is no file {name}.", 404))
        return Response(path.read_bytes(), media_type=media_type, headers={"Cache-Control": "no-cache"})

    @router.get("/sandbox/worker/hits")
    async def hits(request: Request) -> Response:
        try:
            worker_id, base = _worker_id(request, sandbox), sandbox_base(request)
            return JSONResponse(sandbox.inspect(lambda state, now: worker_views.hits_json(state, worker_id, now, base)))
        except WorkerRefusal as error:
            return _refused(error)

    @router.get("/sandbox/worker/assignments")
    async def assignments(request: Request) -> Response:
        try:
            worker_id, base = _worker_id(request, sandbox), sandbox_base(request)
            return JSONResponse(sandbox.inspect(lambda state, _: worker_views.assignments_json(state, worker_id, base)))
        except WorkerRefusal as error:
            return _refused(error)

    @router.get("/sandbox/worker/messages")
    async def messages(request: Request) -> Response:
        try:
            worker_id = _worker_id(request, sandbox)
            return JSONResponse(sandbox.inspect(lambda state, _: worker_views.messages_json(state, worker_id)))
        except WorkerRefusal as error:
            return _refused(error)

    @router.post("/sandbox/worker/session")
    async def pick_worker(request: Request) -> Response:
        """This browser works as `worker_id` from now on (a cookie names the browser's session)."""
        try:
            wanted = await _body(request, PickRequest)
            secret = request.cookies.get(COOKIE) or new_session_secret()
            sandbox.claim_worker(wanted.worker_id, session_hash(secret))
        except WorkerRefusal as error:
            return _refused(error)
        reply = JSONResponse({"worker_id": wanted.worker_id})
        reply.set_cookie(
            COOKIE, secret, max_age=COOKIE_MAX_AGE_S, path="/sandbox", httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )
        return reply

    @router.post("/sandbox/worker/accept")
    async def accept(request: Request) -> Response:
        try:
            wanted = await _body(request, AcceptRequest)
            sandbox.check_holder(check_worker_id(wanted.worker_id), _session(request))
            if bool(wanted.hit_id) == bool(wanted.hit_type_id):
                raise WorkerRefusal("bad_request", "Give either hit_id or hit_type_id.", 400)
            if wanted.hit_type_id:
                assignment = sandbox.accept_from_group(wanted.worker_id, wanted.hit_type_id)
            else:
                assignment = sandbox.accept(wanted.worker_id, wanted.hit_id)
            url = sandbox.work_url(assignment.assignment_id, sandbox_base(request))
            return JSONResponse({"assignment_id": assignment.assignment_id, "hit_id": assignment.hit_id, "url": url})
        except WorkerRefusal as error:
            return _refused(error)

    @router.post("/sandbox/worker/return")
    async def return_assignment(request: Request) -> Response:
        try:
            wanted = await _body(request, ReturnRequest)
            holder = sandbox.inspect(lambda state, _: find_assignment(state, wanted.assignment_id).worker_id)
            sandbox.check_holder(holder, _session(request))
            assignment = sandbox.return_assignment(wanted.assignment_id)
            return JSONResponse({"assignment_id": assignment.assignment_id, "status": assignment.status.value})
        except WorkerRefusal as error:
            return _refused(error)

    @router.get("/sandbox/worker/html/{hit_id}")
    async def html_question(hit_id: str) -> Response:
        up = "../../static"  # from /sandbox/worker/html/{hit_id}
        try:
            page = sandbox.inspect(lambda state, _: parse_question(find_hit(state, hit_id).question).html)
        except WorkerRefusal as error:
            return _page("Not found", error.message, status="refused", code=error.http_status, static=up)
        if page is None:
            return _page("Not found", f"HIT {hit_id} has no HTMLQuestion.", status="refused", code=404, static=up)
        script = f"<script src='{up}/html_question.js'></script>"
        injected, count = _BODY_END.subn(lambda end: script + end.group(0), page, count=1)
        policy = {"Content-Security-Policy": HTML_QUESTION_POLICY}
        return HTMLResponse(injected if count else page + script, headers=policy)

    @router.api_route("/sandbox/submit/{key}/mturk/externalSubmit", methods=["GET", "POST"])
    async def external_submit(request: Request, key: str) -> Response:
        return await _external_submit(sandbox, request, key=key, static="../../../static")

    @router.api_route("/sandbox/mturk/externalSubmit", methods=["GET", "POST"])
    async def external_submit_without_key(request: Request) -> Response:
        return await _external_submit(sandbox, request, key="", static="../static")

    return router


async def _external_submit(sandbox: Sandbox, request: Request, *, key: str, static: str) -> Response:
    """MTurk's form post: the assignment's answers, from the page its turkSubmitTo (with `key`) was given to."""
    try:
        if request.method == "POST":
            fields = parse_form(request.headers.get("content-type", ""), await request.body())
        else:
            fields = list(request.query_params.multi_items())
        assignment_id = next((value for name, value in fields if name == "assignmentId"), "")
        if not assignment_id or assignment_id == PREVIEW_ASSIGNMENT_ID:
            raise WorkerRefusal("not_accepted", "This is a preview: accept the HIT before submitting.", 400)
        answers = [(name, value) for name, value in fields if name != "assignmentId"]
        sandbox.submit(assignment_id, answers, submit_key=key)
    except WorkerRefusal as error:
        return _page("Not submitted", error.message, status="refused", code=error.http_status, static=static)
    return _page(
        "Submitted", "Your work was submitted. Thank you!", status="submitted", assignment_id=assignment_id,
        static=static,
    )
