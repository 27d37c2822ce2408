"""`parley stop`, `parley expire` and `parley cleanup`: stop a run from anywhere, and expire HITs nobody tends.

Stopping is a change in the database (the run `stopped`, its plan no longer publishing); the run's owner
sees it on its next pass, ends its arriving workers with a way to submit and expires the run's open HITs.
The command waits for that (bounded); HITs of a run with no live owner it expires itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from server.cli_app import Target, _run, app, console
from server.cli_servers import POLL_S, WAIT_S, Owner, live_instances, owner_of, owners, sandbox_instance
from server.hits import HitManager
from server.hits.admin import OpenHit, expire_hits, open_hits, stop_run
from server.providers.mturk import MTurkError
from server.states import HitStatus, RunStatus
from server.store.hits import HitStore


@dataclass(frozen=True)
class Stopped:
    """What stopping a run did: its owner then, and how many open HITs each side expired."""

    run_id: str
    owner: Owner
    by_owner: int
    by_cli: int

    def describe(self) -> str:
        if not self.by_owner + self.by_cli:
            return f"Run {self.run_id} stopped; it had no open HIT."
        by_owner = f"{self.by_owner} by its server {self.owner.instance_id}, " if self.owner.alive else ""
        return (f"Run {self.run_id} stopped. Expired {self.by_owner + self.by_cli} HIT(s): "
                f"{by_owner}{self.by_cli} by this command.")


async def stop_and_expire(
    manager: HitManager, run_id: str, *, timeout: float = WAIT_S, progress: Callable[[str], Any] = lambda _: None
) -> Stopped:
    """Stop the run; wait (bounded) for its live owner to expire its open HITs; expire what is left here."""
    if await manager.store.get_run(run_id) is None:
        raise ValueError(f"there is no run {run_id} in this database; `parley status` lists the runs")
    owner = await owner_of(manager.store, run_id)
    await manager.store.set_run_status(run_id, status=RunStatus.STOPPED)
    opened = await stop_run(manager.publisher, manager.hit_store, run_id)
    left = opened
    if owner.alive and opened:
        left = await _left_open(manager, run_id, timeout)
    await expire_hits(manager.publisher, left, progress)
    return Stopped(run_id, owner, by_owner=len(opened) - len(left), by_cli=len(left))


async def _left_open(manager: HitManager, run_id: str, timeout: float) -> list[str]:
    """The run's HITs still open once its owner has expired what it records (or once `timeout` passed)."""
    expired_all = await wait_until_expired(manager.hit_store, run_id, timeout)
    try:
        listed = await open_hits(manager.publisher)
    except MTurkError as exc:
        if not (expired_all and exc.transient and manager.mturk.account == "builtin"):
            raise
        # The owner expired every HIT it records, and the built-in sandbox it served has gone with it (a
        # `parley run` stops the server it started once its run is stopped): nobody can accept one there.
        return []
    return [hit.hit_id for hit in listed if hit.run_id == run_id]


async def wait_until_expired(hit_store: HitStore, run_id: str, timeout: float = WAIT_S) -> bool:
    """Wait (bounded) until no HIT of the run is recorded open or being created; whether that happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not await hit_store.hits(run_id, statuses=(HitStatus.CREATING, HitStatus.OPEN)):
            return True
        await asyncio.sleep(POLL_S)
    return False


async def stop_offline(manager: HitManager, run_id: str) -> str:
    """Stop a run while no server serves the built-in sandbox (its HITs live there): the database only."""
    if await manager.store.get_run(run_id) is None:
        raise ValueError(f"there is no run {run_id} in this database; `parley status` lists the runs")
    await manager.store.set_run_status(run_id, status=RunStatus.STOPPED)
    if await manager.hit_store.plan(run_id) is not None:
        await manager.hit_store.update_plan(run_id, publishing=False)
    return (f"Run {run_id} stopped. No Parley server of this database is alive to serve the built-in sandbox "
            f"where its HITs are: nobody can accept them now, and the next server started on this database "
            f"(`parley serve`) expires them.")


def _stop(ctx: typer.Context, run_id: str) -> None:
    async def work(target: Target, manager: HitManager) -> None:
        if target.provider == "builtin" and not target.endpoint_url:
            if sandbox_instance(await live_instances(manager.store)) is None:
                console.print(await stop_offline(manager, run_id))
                return
        with Progress(console=console, transient=True) as shown:
            bar = shown.add_task(f"Stopping {run_id}: waiting for its server to expire its HITs", total=None)
            stopped = await stop_and_expire(manager, run_id, progress=lambda _: shown.advance(bar))
        console.print(stopped.describe())

    _run(ctx, work)


@app.command()
def stop(ctx: typer.Context, run_id: str) -> None:
    """Stop a run from anywhere: no more HITs, its open ones expired, its waiting workers let go with a way to
    submit (workers in a conversation finish it)."""
    _stop(ctx, run_id)


@app.command()
def expire(ctx: typer.Context, run_id: str) -> None:
    """The same as `parley stop`."""
    _stop(ctx, run_id)


# ---- cleanup -----------------------------------------------------------------------------------------


async def unowned(manager: HitManager) -> list[tuple[OpenHit, str]]:
    """Open HITs nobody tends, and why: of no publishing run of this database, or of a run with no live owner."""
    publishing = {p.run_id for p in await manager.hit_store.plans(manager.mturk.account) if p.publishing}
    leases = await owners(manager.store)
    found = []
    for hit in await open_hits(manager.publisher):
        owner = leases.get(hit.run_id, Owner("", None))
        if hit.run_id not in publishing:
            found.append((hit, "no publishing run"))
        elif not owner.alive:
            found.append((hit, f"no live owner (owner: {owner.describe()})"))
    return found


@app.command()
def cleanup(
    ctx: typer.Context, yes: Annotated[bool, typer.Option("--yes", help="expire without asking")] = False
) -> None:
    """Find open HITs that no live server tends (of no publishing run, or of a run whose owner is gone) and
    expire them."""

    async def work(target: Target, manager: HitManager) -> None:
        found = await unowned(manager)
        table = Table("HIT", "run (annotation)", "why", "title", "reward")
        for hit, why in found:
            table.add_row(hit.hit_id, hit.run_id or "-", why, hit.title, f"${hit.reward}")
        console.print(table)
        if not found:
            console.print("No HIT without a live owner.")
            return
        if yes or typer.confirm(f"Expire these {len(found)} HITs?"):
            with Progress(console=console) as shown:
                bar = shown.add_task("Expiring HITs", total=len(found))
                await expire_hits(manager.publisher, [hit.hit_id for hit, _ in found], lambda _: shown.advance(bar))
            console.print(f"Expired {len(found)} HIT(s).")

    _run(ctx, work)
