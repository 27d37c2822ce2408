from __future__ import annotations

from fastapi import APIRouter, Request

from server.deps import RunsDep, StoreDep
from server.protocol import Health

router = APIRouter()


@router.get("/healthz")
async def healthz(store: StoreDep, runs: RunsDep, request: Request) -> Health:
    await store.ping()
    return Health(database=store.backend, runs=len(runs), instance=request.app.state.ownership.id)
