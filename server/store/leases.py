"""Who runs what: the serving instances on this database, and each run's lease.

An instance is one serving Parley process. It registers a row with the address it listens on and renews
`seen_until` while it lives; the CLI finds a running server here, never by assuming a port.

A run's lease is `task_run.owner` and `task_run.lease_until`. Exactly one instance holds it at a time:
taking it is one conditional UPDATE that succeeds only when the run is unowned, already ours, or its lease
has lapsed; renewing is one UPDATE of every lease the instance still holds. Times are the instances' wall
clocks (`time.time()`); instances on several machines need clocks kept in step (NTP), well inside the
margin by which an owner stops acting before its lease runs out (see `server/ownership.py`).
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlmodel import Field, SQLModel

from server.store.models import TaskRun
from server.store.store import Store

_RUN = TaskRun.__table__  # type: ignore[attr-defined]


class InstanceRow(SQLModel, table=True):
    """A serving Parley process: where it listens and until when it is known to be alive."""

    __tablename__ = "instance"
    id: str = Field(primary_key=True, max_length=64)
    url: str = Field(max_length=512)  # the address it listens on, e.g. http://127.0.0.1:8125
    public_url: str = Field(default="", max_length=512)  # the address workers' browsers reach
    host: str = Field(default="", max_length=255)
    pid: int = 0
    sandbox: bool = False  # serves the built-in MTurk sandbox of its data directory
    started_at: float = 0.0
    seen_until: float = 0.0


_INSTANCE = InstanceRow.__table__  # type: ignore[attr-defined]


class LeaseStore:
    """Instances and run leases, over the Store's connections."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- instances ----------------------------------------------------------------------------

    async def register(self, instance: InstanceRow) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(delete(_INSTANCE).where(_INSTANCE.c.id == instance.id))
            await conn.execute(insert(_INSTANCE).values(**instance.model_dump()))

    async def heartbeat(self, instance_id: str, until: float, *, sandbox: bool | None = None) -> bool:
        """Renew an instance's liveness; False if its row is gone (it was retired)."""
        values: dict[str, object] = {"seen_until": until}
        if sandbox is not None:
            values["sandbox"] = sandbox
        async with self.store.transaction() as conn:
            result = await conn.execute(update(_INSTANCE).where(_INSTANCE.c.id == instance_id).values(**values))
        return bool(result.rowcount)

    async def retire(self, instance_id: str) -> None:
        """A clean shutdown: the instance's row goes and its leases lapse at once."""
        async with self.store.transaction() as conn:
            await conn.execute(
                update(_RUN).where(_RUN.c.owner == instance_id).values(owner="", lease_until=0.0)
            )
            await conn.execute(delete(_INSTANCE).where(_INSTANCE.c.id == instance_id))

    async def instances_at(self, host: str, *, url: str) -> list[InstanceRow]:
        """Every instance recorded on this host at this listening address, live or not."""
        rows = await self.store.fetch_all(select(_INSTANCE).where(_INSTANCE.c.host == host, _INSTANCE.c.url == url))
        return [InstanceRow.model_validate(r._mapping) for r in rows]

    async def live_instances(self, now: float) -> list[InstanceRow]:
        rows = await self.store.fetch_all(
            select(_INSTANCE).where(_INSTANCE.c.seen_until >= now).order_by(_INSTANCE.c.started_at)
        )
        return [InstanceRow.model_validate(r._mapping) for r in rows]

    async def instance(self, instance_id: str) -> InstanceRow | None:
        row = await self.store.fetch_one(select(_INSTANCE).where(_INSTANCE.c.id == instance_id))
        return InstanceRow.model_validate(row._mapping) if row else None

    async def forget_dead(self, before: float) -> None:
        """Drop rows of instances not seen since `before` (long dead): the table stays small."""
        async with self.store.transaction() as conn:
            await conn.execute(delete(_INSTANCE).where(_INSTANCE.c.seen_until < before))

    # ---- run leases ---------------------------------------------------------------------------

    async def acquire(self, run_id: str, *, owner: str, now: float, until: float) -> bool:
        """Take the run's lease if nobody holds it, we do, or its holder's lease has lapsed."""
        free = or_(_RUN.c.owner == "", _RUN.c.owner == owner, _RUN.c.lease_until < now)
        async with self.store.transaction() as conn:
            result = await conn.execute(
                update(_RUN).where(and_(_RUN.c.id == run_id, free)).values(owner=owner, lease_until=until)
            )
        return bool(result.rowcount)

    async def renew(self, owner: str, until: float) -> set[str]:
        """Extend every lease this owner still holds; the ids of the runs it holds afterwards.

        A lease that lapsed but that nobody took is renewed too: nobody else acted on the run meanwhile."""

        def run(conn: Connection) -> set[str]:
            conn.execute(update(_RUN).where(_RUN.c.owner == owner).values(lease_until=until))
            return {str(r[0]) for r in conn.execute(select(_RUN.c.id).where(_RUN.c.owner == owner))}

        async with self.store.transaction() as conn:
            return await conn.run_sync(run)

    async def release(self, run_id: str, *, owner: str) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                update(_RUN).where(_RUN.c.id == run_id, _RUN.c.owner == owner).values(owner="", lease_until=0.0)
            )

    async def live_owner(self, run_id: str, now: float) -> str | None:
        """The instance that holds the run's lease and is alive, if one does."""
        row = await self.store.fetch_one(
            select(_RUN.c.owner).select_from(_RUN.join(_INSTANCE, _INSTANCE.c.id == _RUN.c.owner)).where(
                _RUN.c.id == run_id, _RUN.c.lease_until >= now, _INSTANCE.c.seen_until >= now,
            )
        )
        return str(row[0]) if row else None

    async def leases(self) -> dict[str, tuple[str, float]]:
        """run id -> (owner, lease_until) for every run."""
        rows = await self.store.fetch_all(select(_RUN.c.id, _RUN.c.owner, _RUN.c.lease_until))
        return {str(r[0]): (str(r[1]), float(r[2])) for r in rows}
