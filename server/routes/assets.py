"""A task's own files (`Task(assets=<dir>)`: pictures, sounds) served read-only to its pages, and the
context the task lets a worker see while only previewing its HIT (`Task(preview=...)`).

Only files inside the declared folder are served (the resolved path must stay inside it), of the kinds
listed below, never a hidden file; the page's CSP covers them (same origin), and an SVG opened on its own
gets a CSP that runs nothing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.deps import NotFound, RunDep
from server.protocol import TaskPreview

router = APIRouter()
MEDIA_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
    ".svg": "image/svg+xml", ".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg",
    ".mp4": "video/mp4", ".webm": "video/webm", ".txt": "text/plain; charset=utf-8",
    ".json": "application/json", ".csv": "text/csv; charset=utf-8",
}
# An asset opened on its own (an SVG may hold scripts): nothing runs, nothing is fetched, it frames nowhere.
ASSET_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'"


def asset_file(root: Path, name: str) -> Path | None:
    """The file `name` inside `root`, or None: outside it, hidden, not a file, or of a kind not served."""
    if not name or any(part.startswith(".") for part in Path(name).parts) or "\\" in name:
        return None
    base = root.resolve()
    found = (base / name).resolve()
    if not found.is_relative_to(base) or not found.is_file() or found.suffix.lower() not in MEDIA_TYPES:
        return None
    return found


@router.get("/task/{run_id}/assets/{name:path}", include_in_schema=False)
async def task_asset(run: RunDep, name: str) -> FileResponse:
    root = run.task.assets_dir
    found = asset_file(root, name) if root is not None else None
    if found is None:
        raise NotFound("unknown_asset", f"Task run {run.id!r} has no asset {name!r}.")
    return FileResponse(found, media_type=MEDIA_TYPES[found.suffix.lower()], headers={
        "content-security-policy": ASSET_CSP, "cache-control": "public, max-age=3600",
    })


@router.get("/task/{run_id}/preview")
async def task_preview(run: RunDep) -> TaskPreview:
    """What a worker previewing the HIT may see of the task's context (an example: the first context), when
    the task allows it; nothing otherwise."""
    shown = run.task.preview_message()
    return TaskPreview(context=shown.to_dict() if shown is not None else None)
