"""The participant site: see the studies open to you, take a place (redirected to the study URL with
Prolific's parameters filled in), return it, and hand in at the completion URL with a study's code.

``/sandbox/prolific/submissions/complete?cc=CODE`` stands for ``https://app.prolific.com/submissions/complete``.
Who the participant is comes from the ``pid`` parameter or the cookie set when they took a place (Prolific
knows it from their login).
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.prolific_sandbox import submissions
from server.prolific_sandbox.core import ProlificSandbox
from server.prolific_sandbox.errors import ParticipantRefusal, ProlificError
from server.prolific_sandbox.model import ProlificState, StudyStatus, Submission

BASE = "/sandbox/prolific"
COOKIE = "parley_prolific_pid"


def study_url(state: ProlificState, sub: Submission) -> str:
    url = state.studies[sub.study_id].external_study_url
    for name, value in (("PROLIFIC_PID", sub.participant_id), ("STUDY_ID", sub.study_id), ("SESSION_ID", sub.id)):
        url = url.replace("{{%" + name + "%}}", quote(value, safe=""))
    return url


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(html, status_code=status)


def _refusal(exc: Exception) -> HTMLResponse:
    message = exc.detail if isinstance(exc, ProlificError) else str(exc)
    return _page("Not possible", f"<p id='refusal'>{escape(str(message))}</p>", 409)


def participant_routes(sandbox: ProlificSandbox) -> APIRouter:
    router = APIRouter(prefix=BASE, include_in_schema=False)

    def who(request: Request, pid: str | None) -> str:
        return (pid or request.cookies.get(COOKIE) or "").strip()

    @router.get("/participant")
    async def studies_page(request: Request, pid: str | None = None) -> HTMLResponse:
        participant = who(request, pid)
        def listing(state: ProlificState, now: float) -> list[tuple[str, str, int, int]]:
            return [(s.id, s.name, s.reward, s.total_available_places - state.taken(s.id))
                    for s in state.studies.values() if s.status == StudyStatus.ACTIVE]
        rows = "".join(
            f"<li><form method='post' action='{BASE}/participant/studies/{escape(ident)}/start'>"
            f"<input type='hidden' name='pid' value='{escape(participant)}'>{escape(name)} "
            f"({reward} pence, {left} places left) <button>Start now</button></form></li>"
            for ident, name, reward, left in sandbox.run(listing)
        )
        form = (f"<form method='get'><label>Participant id <input name='pid' value='{escape(participant)}'>"
                "</label><button>Sign in</button></form>")
        return _page("Studies", form + f"<ul id='studies'>{rows}</ul>")

    @router.post("/participant/studies/{study_id}/start")
    async def start(request: Request, study_id: str) -> Response:
        form = dict(parse_qsl((await request.body())[:4096].decode("utf-8", "replace")))
        pid = form.get("pid", "").strip()
        def take(state: ProlificState, now: float) -> str:
            return study_url(state, submissions.start(state, study_id, pid, now))
        try:
            url = sandbox.run(take)
        except (ParticipantRefusal, ProlificError) as exc:
            return _refusal(exc)
        redirect = RedirectResponse(url, status_code=303)
        redirect.set_cookie(COOKIE, pid, samesite="lax")
        return redirect

    @router.post("/participant/submissions/{submission_id}/return")
    async def give_back(submission_id: str) -> Response:
        try:
            sandbox.run(lambda state, now: submissions.give_back(state, submission_id))
        except (ParticipantRefusal, ProlificError) as exc:
            return _refusal(exc)
        return _page("Returned", "<p id='returned'>You returned your place.</p>")

    @router.get("/submissions/complete")
    async def complete(request: Request, cc: str = "", pid: str | None = None) -> Response:
        participant = who(request, pid)
        try:
            sub = sandbox.run(lambda state, now: submissions.complete(state, participant, cc, now))
        except (ParticipantRefusal, ProlificError) as exc:
            return _refusal(exc)
        return _page("Submission received",
                     f"<p id='status' data-status='{escape(sub.status.value)}'>Your submission is "
                     f"{escape(sub.status.value.lower())}. Thank you.</p>")

    return router
