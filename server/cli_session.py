"""A run followed from this terminal: the server `parley run` found or started for it, its progress until
Ctrl-C, and what Ctrl-C then does (stop the run, or leave it running). Shared by `parley run` (MTurk,
server/cli_run.py) and `parley prolific run` (server/cli_prolific.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.live import Live

from server.cli_app import _guard, console
from server.cli_progress import watch
from server.cli_servers import Child, owners, port_holder, start_server, wait_for_owner
from server.settings import Settings
from server.states import RunStatus
from server.store import Store
from server.store.leases import InstanceRow

ON_EXIT = ("ask", "stop", "leave")  # what Ctrl-C does: ask, stop the run, leave it running
T = TypeVar("T")


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    store = Store(settings.db_url)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def served(settings: Settings, run_id: str, child: Child | None, *, hits: bool = True) -> InstanceRow:
    """Wait until a live server holds the run and answers, and say where; a server started here that does not
    take it (or a Ctrl-C meanwhile) is ended."""
    try:
        owner = _guard(with_store(settings, lambda store: wait_for_owner(
            store, run_id, child=child.proc if child else None, log=child.log if child else None)))
    except (typer.Exit, KeyboardInterrupt):
        if child is not None:
            end(child)
        raise
    public = (owner.public_url or owner.url).rstrip("/")
    console.print(f"Run {run_id} is served by {owner.id} at {public}/task/{run_id}")
    if owner.sandbox and hits:
        console.print(f"Work its HITs as any worker at {owner.url.rstrip('/')}/sandbox/worker")
    return owner


def refuse_a_taken_port(host: str, port: int) -> None:
    holder = port_holder(host, port)
    if holder is not None:
        console.print(f"[red]Error:[/red] no Parley server of this database is alive, and {holder}")
        raise typer.Exit(1)


def start_here(settings: Settings, *, host: str, port: int, provider: str) -> Child:
    refuse_a_taken_port(host, port)
    child = start_server(settings, host=host, port=port, provider=provider)
    console.print(f"No Parley server of this database was alive: started one (pid {child.pid}) on {child.url}; "
                  f"its log: {child.log}")
    return child


def leave(run_id: str, owner: InstanceRow, child: Child | None) -> None:
    if child is not None:
        console.print(f"The server this command started keeps serving in the background: pid {child.pid}, "
                      f"log {child.log}.")
    else:
        console.print(f"Run {run_id} keeps running on {owner.id}.")
    console.print(f"Watch it with `parley status`; stop it with `parley stop {run_id}`.")


def watch_run(settings: Settings, run_id: str, target: int) -> str | None:
    """Show the run's progress: the run's status when it stopped from elsewhere, None on Ctrl-C."""

    async def show(store: Store) -> str:
        try:
            with Live(console=console, auto_refresh=False) as live:
                return (await watch(store, run_id, target, live)).status
        finally:
            if not console.is_terminal:
                console.print()  # a terminal's Live leaves the cursor on a new line; a log file needs one

    try:
        return _guard(with_store(settings, show))
    except KeyboardInterrupt:
        return None


def choose(on_exit: str, run_id: str) -> str:
    if on_exit != "ask":
        return on_exit
    try:
        stop = typer.confirm(f"Stop run {run_id} (expire its HITs, let its waiting workers submit)? "
                             "No leaves it running", default=False)
    except typer.Abort:  # no answer (input closed, or a second Ctrl-C): as the default, leave it
        console.print()
        stop = False
    return "stop" if stop else "leave"


def end_if_idle(settings: Settings, child: Child, owner: InstanceRow) -> None:
    """End the server this command started unless it serves another active run."""

    async def others(store: Store) -> list[str]:
        active = {row.id for row in await store.runs(status=RunStatus.ACTIVE)}
        return sorted(run for run, held in (await owners(store)).items()
                      if run in active and held.instance_id == owner.id)

    serving = _guard(with_store(settings, others)) if owner.pid == child.pid else []
    if serving:
        console.print(f"The server this command started (pid {child.pid}) keeps serving {', '.join(serving)}; "
                      f"its log: {child.log}")
        return
    end(child)


def end(child: Child) -> None:
    if child.terminate():
        console.print(f"Stopped the server this command started (pid {child.pid}).")
    else:
        console.print(f"[yellow]The server this command started (pid {child.pid}) did not shut down within 30s "
                      f"and was killed[/yellow]; its log: {child.log}")
