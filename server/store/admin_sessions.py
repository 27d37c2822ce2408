"""Admin dashboard sessions, one row each in the `meta` table, so logging out revokes a cookie on every
instance and a restart keeps the sessions that were open.

A row is keyed by a hash of the session id (the database never holds a usable cookie) and holds when the
session ends and a mark of the admin token it was opened with, so a new admin token closes old sessions.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.models import Meta
from server.store.store import Store

_META = Meta.__table__  # type: ignore[attr-defined]
PREFIX = "admin_session:"


def _key(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()[:48]  # the key column holds 64 characters


class AdminSessions:
    """Open, check and close admin sessions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def open(self, session_id: str, *, until: float, token_mark: str, now: float) -> None:
        async with self.store.transaction() as conn:
            await self._drop_ended(conn, now)
            await conn.execute(insert(_META).values(key=_key(session_id), value=f"{until:.0f} {token_mark}"))

    async def is_open(self, session_id: str, *, token_mark: str, now: float) -> bool:
        row = await self.store.fetch_one(select(_META.c.value).where(_META.c.key == _key(session_id)))
        if row is None:
            return False
        until, _, mark = str(row[0]).partition(" ")
        return float(until) > now and mark == token_mark

    async def close(self, session_id: str) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(delete(_META).where(_META.c.key == _key(session_id)))

    @staticmethod
    async def _drop_ended(conn: AsyncConnection, now: float) -> None:
        """Forget sessions that have ended (a few rows: one per login within the session lifetime)."""
        rows = await conn.execute(select(_META.c.key, _META.c.value).where(_META.c.key.startswith(PREFIX)))
        ended = [key for key, value in rows if float(str(value).partition(" ")[0]) <= now]
        if ended:
            await conn.execute(delete(_META).where(_META.c.key.in_(ended)))
