"""Steps a participant takes on the emulator's site, as a browser would (no following of redirects)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx


def take_place(site: httpx.Client, study_id: str, pid: str) -> dict[str, str]:
    """Start the study as `pid`; returns the parameters the study URL was filled with."""
    reply = site.post(f"/sandbox/prolific/participant/studies/{study_id}/start", data={"pid": pid})
    assert reply.status_code == 303, reply.text
    query = parse_qs(urlsplit(reply.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}


def hand_in(site: httpx.Client, pid: str, code: str) -> httpx.Response:
    return site.get("/sandbox/prolific/submissions/complete", params={"cc": code, "pid": pid})


def try_place(site: httpx.Client, study_id: str, pid: str) -> httpx.Response:
    return site.post(f"/sandbox/prolific/participant/studies/{study_id}/start", data={"pid": pid})
