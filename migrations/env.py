"""Alembic environment: Parley's SQLModel metadata, its database URL from Settings, the async engine.

A caller may hand in a connection (`config.attributes["connection"]`) or a URL (`config.attributes["url"]`),
as the tests and `server.migrations` do; otherwise the URL is Settings().db_url (PARLEY_DATABASE_URL).
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import server.store  # noqa: F401  (registers every table on SQLModel.metadata)
from server.settings import Settings

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url: Any = config.attributes.get("url") or Settings().db_url
    return str(url)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_online() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _migrate(given)
else:
    asyncio.run(_migrate_online())
