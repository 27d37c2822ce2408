"""The `parley` Typer app and what its commands share: the target (which MTurk, which settings), running
async work with a store and a requester-side HIT manager, and reporting failures.

Command modules (server/cli.py, cli_run.py, cli_stop.py, cli_data.py, cli_prolific.py) register on `app`;
`server.cli` imports them all and is the entry point. Nothing here imports a command module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from server.cli_servers import ServerError, mturk_endpoint
from server.hits import BudgetExceeded, HitManager, LiveModeRefused, ReviewError
from server.providers.mturk import MTurk, MTurkError
from server.settings import Settings
from server.store import Store
from server.tasks import TaskLoadError

app = typer.Typer(help="Parley: live-chat crowdsourcing tasks on Amazon Mechanical Turk.", no_args_is_help=True)
console = Console(soft_wrap=True)  # long lines (URLs, paths) stay whole in logs; a terminal wraps them
T = TypeVar("T")
FAILURES = (MTurkError, ReviewError, BudgetExceeded, LiveModeRefused, TaskLoadError, ServerError, ValueError)


@dataclass
class Target:
    """Which MTurk the command talks to, and the settings (database) it works on."""

    settings: Settings
    provider: str
    endpoint_url: str

    async def mturk(self, store: Store) -> MTurk:
        """MTurk as the provider says; the built-in sandbox of the live server that serves it."""
        endpoint = await mturk_endpoint(store, self.settings, self.provider, self.endpoint_url)
        return MTurk.connect(endpoint, builtin=self.provider == "builtin")


@app.callback()
def _root(
    ctx: typer.Context,
    provider: Annotated[str, typer.Option(help="builtin | sandbox | live (default: PARLEY_PROVIDER)")] = "",
    endpoint_url: Annotated[str, typer.Option(help="MTurk requester endpoint, overriding the provider's")] = "",
) -> None:
    settings = Settings()
    chosen = provider or settings.provider
    if chosen not in ("builtin", "sandbox", "live"):
        raise typer.BadParameter("provider must be builtin, sandbox or live")
    ctx.obj = Target(settings=settings, provider=chosen, endpoint_url=endpoint_url)


def _run(ctx: typer.Context, work: Callable[[Target, HitManager], Awaitable[T]]) -> T:
    """Run `work` with a store and a requester-side HIT manager (no runs, no loop), reporting failures."""
    return with_manager(ctx.obj, work)


def with_manager(target: Target, work: Callable[[Target, HitManager], Awaitable[T]]) -> T:
    async def go() -> T:
        store = Store(target.settings.db_url)
        await store.open()
        try:
            mturk = await target.mturk(store)
            manager = HitManager(mturk=mturk, store=store, runs=None, public_url=target.settings.public_url)
            return await work(target, manager)
        finally:
            await store.close()

    return _guard(go())


def _guard(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except FAILURES as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
