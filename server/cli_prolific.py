"""`parley prolific ...`: recruit a run on Prolific (the built-in one by default) and review its
submissions from the command line. Registered on `server.cli.app` as the `prolific` command group.

Money is in the Prolific account's currency: `--budget 20` is 20.00 (GBP on the built-in Prolific).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn
from rich.table import Table

from server.cli_app import Target, app, console
from server.hits import plan as rules
from server.hits.sync import StoreMoves
from server.prolific_wiring import PROLIFIC_API, plan_run, prolific_provider
from server.providers.base import BudgetExceeded, RejectionCategory, Submission, SubmissionStatus
from server.providers.prolific import BonusUncertain, ProlificError, ProlificProvider, ProlificRefusal
from server.serving import uvicorn_options
from server.settings import Settings
from server.states import AgentState
from server.store import Store
from server.tasks import TaskLoadError, load_task

prolific = typer.Typer(help="Recruit on Prolific: studies, places and submissions.", no_args_is_help=True)
app.add_typer(prolific, name="prolific")
T = TypeVar("T")
FAILURES = (ProlificError, ProlificRefusal, BonusUncertain, BudgetExceeded, TaskLoadError, ValueError)
REVIEWED = {SubmissionStatus.APPROVED: AgentState.APPROVED, SubmissionStatus.REJECTED: AgentState.REJECTED}


def _settings(ctx: typer.Context) -> Settings:
    target: Target = ctx.find_root().obj
    return target.settings


def _with(ctx: typer.Context, work: Callable[[ProlificProvider, Store], Awaitable[T]]) -> T:
    """Run `work` with the Prolific provider of these settings and the store, reporting failures plainly."""
    settings = _settings(ctx)

    async def go() -> T:
        provider = prolific_provider(settings)
        store = Store(settings.db_url)
        await store.open()
        try:
            return await work(provider, store)
        finally:
            await store.close()
            await provider.aclose()

    try:
        return asyncio.run(go())
    except FAILURES as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None


async def _record(store: Store, submission: Submission, run_id: str) -> None:
    """Write a review decision onto the agent that did the work (as MTurk review does)."""
    target = REVIEWED.get(submission.status)
    agent = await store.agent_for_assignment(run_id, submission.id) if run_id else None
    if target is not None and agent is not None and agent.state != target:
        await StoreMoves(store).move(run_id, agent, target)


def _run_of(provider: ProlificProvider, submission: Submission) -> str:
    return next((s.run_id for s in provider.ledger.account.studies if s.study_id == submission.recruitment_id), "")


@prolific.command("run")
def run(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="task module, e.g. worlds.chat_demo")],
    run_id: Annotated[str, typer.Option(help="default: <task name>-<time>")] = "",
    budget: Annotated[float, typer.Option(help="cap: rewards + Prolific's fee and VAT + bonuses (0: none)")] = 0.0,
    minutes: Annotated[int, typer.Option(help="estimated completion time shown to participants")] = 10,
    live: Annotated[bool, typer.Option("--live", help="recruit on Prolific itself: real money")] = False,
    confirm_spend: Annotated[float, typer.Option(help="confirm the live budget without a prompt")] = -1.0,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Recruit a task's participants on Prolific and serve it: the built-in Prolific unless --live."""
    base = _settings(ctx)
    public_url = base.public_url if live else f"http://{host}:{port}"
    try:
        loaded = load_task(task)
        if live and (budget <= 0 or not public_url.startswith("https://") or not base.prolific_api_token):
            raise ValueError("--live needs --budget, an https PARLEY_PUBLIC_URL and PARLEY_PROLIFIC_API_TOKEN")
    except FAILURES as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    run_id = run_id or f"{loaded.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if live and confirm_spend != budget:
        typer.confirm(f"Recruit run {run_id} on Prolific, spending up to {budget:.2f} of real money?", abort=True)
    settings = base.model_copy(update={
        "public_url": public_url, "host": host, "port": port, "demo_runs": {}, "mturk_publish": [],
        "provider": "live" if live else "builtin", "prolific_api_url": PROLIFIC_API if live else "",
    })

    async def prepare(provider: ProlificProvider, store: Store) -> None:
        await store.ensure_run(run_id, task, {})
        await plan_run(provider, run_id=run_id, task_module=task, task=loaded, budget_cents=rules.cents(budget),
                       estimated_minutes=minutes)

    ctx.find_root().obj = Target(settings=settings, provider=settings.provider, endpoint_url="")
    _with(ctx, prepare)
    cap = f"{budget:.2f}" if budget else "none"
    console.print(f"Run [bold]{run_id}[/bold] recruits on {'Prolific' if live else 'the built-in Prolific'} "
                  f"(budget {cap}). Ctrl-C stops serving; `parley prolific expire {run_id}` stops recruiting.")
    if not live:
        console.print(f"Take a place as any participant at {public_url}/sandbox/prolific/participant")

    from server.main import create_app  # here: importing server.main builds its app from the environment

    uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options(settings))


@prolific.command()
def studies(ctx: typer.Context) -> None:
    """Parley's studies on this account: status, places offered and taken."""
    found = _with(ctx, lambda provider, store: provider.recruitments())
    table = Table("run", "study", "status", "places", "taken")
    for study in found:
        table.add_row(study.run_id, study.id, study.status, str(study.places), str(study.taken))
    console.print(table)


@prolific.command()
def submissions(ctx: typer.Context, run_id: str) -> None:
    """A run's submissions: participant, Prolific's status, completion code."""
    found = _with(ctx, lambda provider, store: provider.submissions(run_id))
    table = Table("submission", "participant", "status", "code")
    for sub in found:
        table.add_row(sub.id, sub.worker_id, sub.provider_status, sub.code)
    console.print(table)


@prolific.command()
def approve(ctx: typer.Context, submission_id: str) -> None:
    """Approve a submission awaiting review (the participant is paid the reward)."""
    async def work(provider: ProlificProvider, store: Store) -> Submission:
        done = await provider.approve(submission_id)
        await _record(store, done, _run_of(provider, done))
        return done

    console.print(f"{submission_id}: {_with(ctx, work).provider_status}")


@prolific.command()
def reject(
    ctx: typer.Context, submission_id: str,
    reason: Annotated[str, typer.Option(help="shown to the participant; Prolific needs 100+ characters")],
    category: Annotated[RejectionCategory, typer.Option(help="Prolific's rejection category")],
) -> None:
    """Reject a submission awaiting review, with a reason and one of Prolific's categories."""
    async def work(provider: ProlificProvider, store: Store) -> Submission:
        done = await provider.reject(submission_id, reason, category)
        await _record(store, done, _run_of(provider, done))
        return done

    console.print(f"{submission_id}: {_with(ctx, work).provider_status}")


@prolific.command()
def bonus(
    ctx: typer.Context, submission_id: str, amount: float, reason: Annotated[str, typer.Option()],
    key: Annotated[str, typer.Option(help="tells two intended bonuses apart (default: amount and reason)")] = "",
) -> None:
    """Pay a bonus once (a repeat of the same command pays nothing more)."""
    cents = rules.cents(amount)
    paid = _with(ctx, lambda provider, store: provider.bonus(
        submission_id, cents, reason, key=key or f"{submission_id}:{cents}:{reason}"
    ))
    console.print(f"bonus {rules.dollars(paid.cost.paid_cents)} to {paid.worker_id}: "
                  f"{'paid' if paid.paid else 'not paid'} (fee {rules.dollars(paid.cost.fee_cents)}, "
                  f"VAT {rules.dollars(paid.cost.vat_cents)})")


@prolific.command()
def block(ctx: typer.Context, participant_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """Keep a participant out of Parley's studies (Parley's participant group, a block-list filter)."""
    _with(ctx, lambda provider, store: provider.block(participant_id, reason))
    console.print(f"{participant_id} is blocked from Parley's studies")


@prolific.command()
def unblock(ctx: typer.Context, participant_id: str) -> None:
    _with(ctx, lambda provider, store: provider.unblock(participant_id))
    console.print(f"{participant_id} may take part again")


@prolific.command()
def expire(ctx: typer.Context, run_id: str) -> None:
    """Stop recruiting for a run: its study stops taking people (those working may still hand in)."""
    async def work(provider: ProlificProvider, store: Store) -> None:
        async with provider.ledger.hold():
            plan = provider.ledger.account.plans.get(run_id)
            if plan is not None:
                plan.publishing = False
                provider.ledger.save()
        await provider.expire(run_id)

    _with(ctx, work)
    console.print(f"run {run_id} recruits no more on Prolific")


@prolific.command()
def balance(ctx: typer.Context) -> None:
    """The account's balance: total, available (less what open studies hold), and what was spent on what."""
    found = _with(ctx, lambda provider, store: provider.balance())
    currency = found.get("currency_code", "")
    console.print(f"total {rules.dollars(int(found['total_balance']))} {currency}, "
                  f"available {rules.dollars(int(found['available_balance']))} {currency}")
