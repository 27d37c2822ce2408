"""The start-up schema check: Parley refuses to run on a database whose schema is not the one it expects.

`check_schema(db_url)` runs before `Store.open()`. A database at Alembic's head passes; an empty one is
created at head and stamped (zero set-up, SQLite and PostgreSQL alike: there is nothing in it to lose); a
database made by create_all before Parley had migrations is stamped if it matches this schema exactly.
Anything else (an older revision, a different schema) raises SchemaOutOfDate with the command to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import server.store  # noqa: F401  (registers every table on SQLModel.metadata)

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
UPGRADE = "alembic upgrade head"


class SchemaOutOfDate(RuntimeError):
    """The database's schema is not this Parley's; the message says what to run."""


@dataclass(frozen=True)
class SchemaStatus:
    action: str  # "current" | "created" | "stamped"
    revision: str


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS}"
    return head


async def check_schema(db_url: str) -> SchemaStatus:
    """Raise SchemaOutOfDate unless the database is (or has just been made) at the head revision."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(db_url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(_check, url.render_as_string(hide_password=True))
    finally:
        await engine.dispose()


def _check(conn: Connection, shown_url: str) -> SchemaStatus:
    script = ScriptDirectory(str(MIGRATIONS))
    head = head_revision()
    context = MigrationContext.configure(conn)
    current = set(context.get_current_heads())
    if current == {head}:
        return SchemaStatus("current", head)
    tables = set(inspect(conn).get_table_names()) & set(SQLModel.metadata.tables)
    if not current and not tables:
        SQLModel.metadata.create_all(conn)
        context.stamp(script, "head")
        return SchemaStatus("created", head)
    if not current:
        if not compare_metadata(context, SQLModel.metadata):
            context.stamp(script, "head")
            return SchemaStatus("stamped", head)
        raise SchemaOutOfDate(
            f"The database at {shown_url} was made before Parley used migrations and is not this version's "
            f"schema. Back it up, then run: alembic stamp 0001 && {UPGRADE}"
        )
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = current - known
    if unknown:
        raise SchemaOutOfDate(
            f"The database at {shown_url} is at revision {', '.join(sorted(unknown))}, which this Parley does "
            "not know: it was migrated by a newer Parley. Run that version, or restore a backup."
        )
    raise SchemaOutOfDate(
        f"The database at {shown_url} is at schema revision {', '.join(sorted(current))}; this Parley needs "
        f"{head}. Back it up, then run: {UPGRADE}  (with the same PARLEY_DATABASE_URL; in Docker: "
        f"docker compose run --rm parley {UPGRADE})"
    )
