"""`parley`: serve, publish and run a task, watch it, expire and clean up HITs, review and pay.

MTurk defaults to the built-in sandbox of a running Parley server; `--provider sandbox` is MTurk's own
sandbox; live MTurk needs `--provider live` (and, for `run`, `--live` with a confirmed maximum spend).
The CLI reads and writes the database through Store and talks to MTurk through the provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from server.hits import BudgetExceeded, HitManager, LiveModeRefused, ReviewError, check_live, publish_run
from server.hits.admin import expire_hits, orphans, publishing_choice, stop_run
from server.hits.plan import dollars
from server.providers.mturk import MTurk, MTurkError, account_key, endpoint_for
from server.serving import uvicorn_options
from server.settings import Settings
from server.store import Store
from server.store.hits import HTML, HitPlan, HitStore
from server.tasks import TaskLoadError, load_task

app = typer.Typer(help="Parley: live-chat crowdsourcing tasks on Amazon Mechanical Turk.", no_args_is_help=True)
console = Console()
T = TypeVar("T")
FAILURES = (MTurkError, ReviewError, BudgetExceeded, LiveModeRefused, TaskLoadError, ValueError)


@dataclass
class Target:
    """Which MTurk the command talks to, and the settings (database) it works on."""

    settings: Settings
    provider: str
    endpoint_url: str

    @property
    def endpoint(self) -> str:
        return endpoint_for(self.provider, public_url=self.settings.public_url, endpoint_url=self.endpoint_url)

    def mturk(self) -> MTurk:
        return MTurk.connect(self.endpoint, builtin=self.provider == "builtin")


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
    target: Target = ctx.obj

    async def go() -> T:
        store = Store(target.settings.db_url)
        await store.open()
        try:
            manager = HitManager(mturk=target.mturk(), store=store, runs=None, public_url=target.settings.public_url)
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


# ---- serving ---------------------------------------------------------------------------------------


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve Parley (its settings come from PARLEY_* variables)."""
    uvicorn.run("server.main:app", host=host, port=port, **uvicorn_options(Settings()))


@app.command()
def run(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="task module, e.g. worlds.chat_demo")],
    run_id: Annotated[str, typer.Option(help="default: <task name>-<time>")] = "",
    budget: Annotated[float, typer.Option(help="budget cap in USD: reward + fees + bonuses (0: none)")] = 0.0,
    live: Annotated[bool, typer.Option("--live", help="publish on LIVE MTurk: real money")] = False,
    confirm_spend: Annotated[float, typer.Option(help="confirm the live budget without a prompt")] = -1.0,
    question: Annotated[str, typer.Option(
        help="html: one HTMLQuestion HIT per item (tasks with a form, e.g. worlds.static_form); external: "
             "Parley's task page. Default: html when the task has a form")] = "",
    assignments: Annotated[int, typer.Option(help="workers per item for html HITs, 1..9 (0: the task's)")] = 0,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Publish a task's HITs and serve it: on the built-in sandbox unless --provider or --live says otherwise."""
    target: Target = ctx.obj
    provider = "live" if live else ("builtin" if target.provider == "live" else target.provider)
    public_url = target.settings.public_url if provider != "builtin" else f"http://{host}:{port}"
    try:
        loaded = load_task(task)
        check_live(live=live, budget_usd=budget, public_url=public_url)
        publishing_choice(loaded, question, assignments)  # refused here, before anything is written
    except FAILURES as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    run_id = run_id or f"{loaded.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if live and confirm_spend != budget:
        typer.confirm(
            f"Publish run {run_id} on LIVE MTurk, spending up to ${budget:.2f} of real money?", abort=True
        )
    settings = Settings(provider=provider, public_url=public_url, demo_runs={})
    endpoint = endpoint_for(provider, public_url=public_url, endpoint_url=target.endpoint_url)

    async def prepare() -> HitPlan:
        store = Store(settings.db_url)
        await store.open()
        try:
            await store.ensure_run(run_id, task, {})
            return await publish_run(
                HitStore(store), run_id=run_id, account=account_key(endpoint), task=loaded, budget_usd=budget,
                live=live, public_url=public_url, question=question, assignments=assignments,
            )
        finally:
            await store.close()

    plan = _guard(prepare())
    cap = f"${budget:.2f}" if budget else "none"
    kind = (f"one HTMLQuestion HIT per item, {plan.assignments} worker(s) each" if plan.question == HTML
            else "ExternalQuestion HITs of its task page")
    console.print(f"Run [bold]{run_id}[/bold] publishes {kind} on {account_key(endpoint)} (budget {cap}). "
                  f"Ctrl-C stops serving; `parley expire {run_id}` stops the run.")
    if provider == "builtin":
        console.print(f"Work its HITs as any worker at {public_url}/sandbox/worker")

    from server.main import create_app  # here: importing server.main builds its app from the environment

    uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options(settings))


# ---- watching --------------------------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context) -> None:
    """Runs, their conversations, agents, HITs and spend."""

    async def work(target: Target, manager: HitManager) -> None:
        table = Table("run", "task", "status", "conversations", "HITs open/taken/submitted/reviewed", "spend / budget")
        for row in await manager.store.runs():
            completed = len(await manager.store.conversations(row.id, states=["completed"]))
            records = await manager.hit_store.hits(row.id)
            count = {s: sum(1 for r in records if r.status == s) for s in ("open", "taken", "submitted", "reviewed")}
            plan = await manager.hit_store.plan(row.id)
            spend = dollars(await manager.hit_store.spend(row.id))
            budget = (f"${dollars(plan.budget_cents)}" if plan.budget_cents else "no cap") if plan else "not published"
            table.add_row(row.id, row.task_module, row.status, str(completed), "/".join(map(str, count.values())),
                          f"${spend} / {budget}")
        console.print(table)

    _run(ctx, work)


@app.command()
def review(ctx: typer.Context, run_id: str, all_work: Annotated[bool, typer.Option("--all")] = False) -> None:
    """Work of a run waiting for review (--all: reviewed work too)."""

    async def work(target: Target, manager: HitManager) -> None:
        statuses = ["submitted", "reviewed"] if all_work else ["submitted"]
        table = Table("assignment", "worker", "HIT", "MTurk status", "agent state", "conversation")
        for record in await manager.hit_store.hits(run_id, statuses=statuses):
            agent = await manager.store.agent_for_assignment(run_id, record.assignment_id)
            table.add_row(record.assignment_id, record.worker_id, record.hit_id or "", record.assignment_status,
                          agent.state if agent else "-", agent.conversation_id if agent else "-")
        states = ["Submitted", "Approved", "Rejected"] if all_work else ["Submitted"]
        for answer in await manager.hit_store.form_answers(run_id, statuses=states):
            table.add_row(answer.assignment_id, answer.worker_id, answer.hit_id, answer.assignment_status,
                          "form", f"item {answer.item_id}: {answer.error or answer.answers}")
        console.print(table)

    _run(ctx, work)


@app.command()
def balance(ctx: typer.Context) -> None:
    """The account's available and on-hold balance."""

    async def work(target: Target, manager: HitManager) -> None:
        reply = await manager.mturk.call("GetAccountBalance")
        console.print(f"{manager.mturk.account}: available ${reply['AvailableBalance']}, "
                      f"on hold ${reply.get('OnHoldBalance', '0.00')}")

    _run(ctx, work)


# ---- stopping --------------------------------------------------------------------------------------


@app.command()
def expire(ctx: typer.Context, run_id: str) -> None:
    """Stop a run: no more HITs, and every open one expired now (workers on one may still submit)."""

    async def work(target: Target, manager: HitManager) -> None:
        await manager.store.set_run_status(run_id, "stopped")
        await _expire_all(manager, await stop_run(manager.publisher, manager.hit_store, run_id))

    _run(ctx, work)


@app.command()
def cleanup(
    ctx: typer.Context, yes: Annotated[bool, typer.Option("--yes", help="expire without asking")] = False
) -> None:
    """Find open HITs that no publishing run of this database wants (orphans) and expire them."""

    async def work(target: Target, manager: HitManager) -> None:
        found = await orphans(manager.publisher, manager.hit_store)
        table = Table("HIT", "run (annotation)", "title", "reward")
        for hit in found:
            table.add_row(hit.hit_id, hit.run_id or "-", hit.title, f"${hit.reward}")
        console.print(table)
        if not found:
            console.print("No orphan HITs.")
            return
        if yes or typer.confirm(f"Expire these {len(found)} HITs?"):
            await _expire_all(manager, [hit.hit_id for hit in found])

    _run(ctx, work)


async def _expire_all(manager: HitManager, hit_ids: list[str]) -> None:
    with Progress(console=console) as progress:
        bar = progress.add_task("Expiring HITs", total=len(hit_ids))
        await expire_hits(manager.publisher, hit_ids, lambda _: progress.advance(bar))
    console.print(f"Expired {len(hit_ids)} HIT(s).")


# ---- review actions --------------------------------------------------------------------------------


@app.command()
def approve(
    ctx: typer.Context,
    assignments: Annotated[list[str] | None, typer.Argument()] = None,
    run_id: Annotated[str, typer.Option("--run", help="approve all submitted work of this run")] = "",
    feedback: str = "",
) -> None:
    """Approve assignments (pay their reward)."""

    async def work(target: Target, manager: HitManager) -> None:
        ids = list(assignments or [])
        if run_id:
            ids += [r.assignment_id for r in await manager.hit_store.hits(run_id, statuses=["submitted"])
                    if r.assignment_id]
            ids += [a.assignment_id for a in await manager.hit_store.form_answers(run_id, statuses=["Submitted"])]
        with Progress(console=console) as progress:
            bar = progress.add_task("Approving", total=len(ids))
            for assignment_id in ids:
                await manager.review.approve(assignment_id, feedback)
                progress.advance(bar)
        console.print(f"Approved {len(ids)} assignment(s).")

    _run(ctx, work)


@app.command()
def reject(
    ctx: typer.Context, assignment_id: str,
    reason: Annotated[str, typer.Option(help="shown to the worker (required)")],
) -> None:
    """Reject an assignment (no reward). A reason is required."""

    async def work(target: Target, manager: HitManager) -> None:
        await manager.review.reject(assignment_id, reason)
        console.print(f"Rejected {assignment_id}.")

    _run(ctx, work)


@app.command()
def bonus(
    ctx: typer.Context, assignment_id: str, amount: str,
    reason: Annotated[str, typer.Option(help="shown to the worker")],
    key: Annotated[str, typer.Option(help="tells apart two bonuses on one assignment")] = "",
) -> None:
    """Pay a bonus; running it again pays nothing more."""

    async def work(target: Target, manager: HitManager) -> None:
        paid = await manager.review.bonus(assignment_id, amount, reason, key=key)
        console.print(f"Bonus ${dollars(paid.amount_cents)} to {paid.worker_id}: {paid.status}.")

    _run(ctx, work)


@app.command()
def block(ctx: typer.Context, worker_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """Soft-block a worker: Parley refuses them and MTurk hides Parley's HITs from them."""

    async def work(target: Target, manager: HitManager) -> None:
        await manager.review.block(worker_id, reason)
        console.print(f"Blocked {worker_id}.")

    _run(ctx, work)


@app.command()
def unblock(ctx: typer.Context, worker_id: str) -> None:
    """Lift a soft block."""

    async def work(target: Target, manager: HitManager) -> None:
        await manager.review.unblock(worker_id)
        console.print(f"Unblocked {worker_id}.")

    _run(ctx, work)


@app.command()
def notify(ctx: typer.Context, worker_ids: list[str], subject: Annotated[str, typer.Option()],
           message: Annotated[str, typer.Option()]) -> None:
    """Send workers a message through MTurk."""

    async def work(target: Target, manager: HitManager) -> None:
        failures = await manager.review.notify(worker_ids, subject, message)
        for failure in failures:
            console.print(f"[yellow]{failure['WorkerId']}[/yellow]: {failure['NotifyWorkersFailureMessage']}")
        console.print(f"Notified {len(worker_ids) - len(failures)} worker(s).")

    _run(ctx, work)


# The data commands (export, agreement) live in their own module and register on `app` when imported.
from server import cli_data  # noqa: E402, F401


def main() -> None:
    app()
