"""`parley run TASK --provider prolific` (also spelled `parley prolific run`): recruit a run on Prolific (the
built-in one unless --live), and `parley prolific ...`: review its submissions from the command line.

Running is `parley run`'s way (server/cli_run.py): the run and its study plan are written to the database,
this database's live Parley server serves it (or one is started in the background when none runs), its study
manager publishes the study, and the command shows progress until Ctrl-C, when it stops the run (its study
stops taking people) or leaves it running. Every command here works on the Prolific records in the database
(server/store/prolific.py), the same ones every server reads.

Money is in the Prolific account's currency: `--budget 20` is 20.00 (GBP on the built-in Prolific).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from server import cli_session
from server.cli_app import Target, _guard, app, console
from server.cli_servers import POLL_S, WAIT_S, Child, ServerError, listen_url, live_instances, sandbox_instance
from server.hits import plan as rules
from server.hits.sync import StoreMoves
from server.prolific_wiring import builtin_prolific, plan_run, prolific_provider
from server.providers.base import BudgetExceeded, RejectionCategory, Submission, SubmissionStatus
from server.providers.prolific import BonusUncertain, ProlificError, ProlificProvider, ProlificRefusal
from server.settings import Settings
from server.states import AgentState, RunStatus
from server.store import Store
from server.store.leases import InstanceRow
from server.tasks import TaskLoadError, load_task
from worlds.base import Task

Found = TypeVar("Found")

prolific = typer.Typer(help="Recruit on Prolific: studies, places and submissions.", no_args_is_help=True)
app.add_typer(prolific, name="prolific")
T = TypeVar("T")
FAILURES = (ProlificError, ProlificRefusal, BonusUncertain, BudgetExceeded, TaskLoadError, ServerError, ValueError)
REVIEWED = {SubmissionStatus.APPROVED: AgentState.APPROVED, SubmissionStatus.REJECTED: AgentState.REJECTED}
PUBLISH_WAIT_S = 60.0  # how long `run` waits for the server's study manager to publish the run's study


def _settings(ctx: typer.Context) -> Settings:
    target: Target = ctx.find_root().obj
    return target.settings


async def connect(settings: Settings, store: Store) -> ProlificProvider:
    """The Prolific provider as a client: the built-in Prolific of the live server that serves it (any
    process on the data directory may, see server/prolific_sandbox/core.py), else at the settings' address."""
    if builtin_prolific(settings):
        server = sandbox_instance(await live_instances(store))
        if server is not None:
            settings = settings.model_copy(update={"public_url": server.url})
    return prolific_provider(settings, store)


def _guarded(settings: Settings, work: Callable[[ProlificProvider, Store], Awaitable[T]]) -> T:
    """Run `work` with the Prolific provider of these settings and the store, reporting failures plainly."""

    async def go() -> T:
        store = Store(settings.db_url)
        await store.open()
        try:
            provider = await connect(settings, store)
            try:
                return await work(provider, store)
            finally:
                await provider.aclose()
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except FAILURES as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None


async def wait_until(what: str, check: Callable[[], Awaitable[Found]], *, timeout: float = WAIT_S) -> Found:
    """Poll `check` (the database and Prolific offer nothing to wait on) until it answers something truthy;
    ServerError naming `what` past `timeout`."""
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise ServerError(f"waited {timeout:.0f}s for {what}")
        await asyncio.sleep(POLL_S)
    return found


def _with(ctx: typer.Context, work: Callable[[ProlificProvider, Store], Awaitable[T]]) -> T:
    return _guarded(_settings(ctx), work)


async def _record(store: Store, submission: Submission, run_id: str) -> None:
    """Write a review decision onto the agent that did the work (as MTurk review does)."""
    target = REVIEWED.get(submission.status)
    agent = await store.agent_for_assignment(run_id, assignment_id=submission.id) if run_id else None
    if target is not None and agent is not None and agent.state != target:
        await StoreMoves(store).move(run_id, agent, target)


# ---- running --------------------------------------------------------------------------------------


def _checked(settings: Settings, task: str, *, live: bool, budget: float) -> Task:
    """The task, once the live-mode rules allow it; refused before anything is written."""
    try:
        loaded = load_task(task)
        if live and (budget <= 0 or not settings.public_url.startswith("https://")
                     or not settings.prolific_api_token):
            raise ValueError("--live needs --budget, an https PARLEY_PUBLIC_URL and PARLEY_PROLIFIC_API_TOKEN")
        if not live and not builtin_prolific(settings):
            raise ValueError(
                "Prolific is configured (PARLEY_PROLIFIC_API_TOKEN or PARLEY_PROLIFIC_API_URL), so this run would "
                "spend real money: add --live and --budget, or unset them to use the built-in Prolific"
            )
    except FAILURES as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    return loaded


async def _register(
    settings: Settings, store: Store, provider: ProlificProvider, *, run_id: str, module: str, task: Task,
    budget: float, minutes: int,
) -> list[InstanceRow]:
    """Write the run (active) and its study plan; the live servers of this database that can serve it."""
    instances = await live_instances(store)
    builtin = builtin_prolific(settings)
    servers = [i for i in instances if i.sandbox] if builtin else instances
    if instances and not servers:
        raise ServerError(
            f"the live Parley server(s) of this database ({', '.join(i.id for i in instances)}) do not serve the "
            "built-in Prolific (it is served with PARLEY_PROVIDER=builtin and no PARLEY_PROLIFIC_API_TOKEN): "
            "run with their settings, or stop them and run again"
        )
    existing = await store.get_run(run_id)
    if existing is not None and existing.task_module != module:
        raise ValueError(f"run {run_id} already exists for {existing.task_module}, not {module}: use a new --run-id")
    await plan_run(provider, run_id=run_id, task_module=module, task=task, budget_cents=rules.cents(budget),
                   estimated_minutes=minutes)
    await store.ensure_run(run_id, task_module=module, options={})
    await store.set_run_status(run_id, status=RunStatus.ACTIVE)  # running a stopped run again resumes it
    return servers


async def _open_study(provider: ProlificProvider, run_id: str) -> str:
    """The id of the run's study taking people, "" while there is none."""
    return next((r.id for r in await provider.recruitments() if r.run_id == run_id and r.open), "")


def run_on_prolific(
    settings: Settings, task: str, *, run_id: str, budget: float, minutes: int, live: bool, confirm_spend: float,
    host: str, port: int, detach: bool, on_exit: str,
) -> None:
    """`parley run TASK --provider prolific`: as `parley run` does for MTurk, with a study for HITs."""
    if on_exit not in cli_session.ON_EXIT:
        raise typer.BadParameter(f"--on-exit must be one of {', '.join(cli_session.ON_EXIT)}")
    loaded = _checked(settings, task, live=live, budget=budget)
    host, port = host or settings.host, port or settings.port
    run_id = run_id or f"{loaded.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if live and confirm_spend != budget:
        typer.confirm(f"Recruit run {run_id} on Prolific, spending up to {budget:.2f} of real money?", abort=True)
    if not _guard(cli_session.with_store(settings, live_instances)):
        cli_session.refuse_a_taken_port(host, port)  # before anything is written
    if builtin_prolific(settings):  # until a server serves it, the built-in Prolific is where one will listen
        settings = settings.model_copy(update={"public_url": listen_url(host, port)})
    servers = _guarded(settings, lambda provider, store: _register(
        settings, store, provider, run_id=run_id, module=task, task=loaded, budget=budget, minutes=minutes))
    cap = f"{budget:.2f}" if budget else "none"
    where = "Prolific" if live else "the built-in Prolific"
    console.print(f"Run [bold]{run_id}[/bold] recruits participants in a study on {where} (budget {cap}); "
                  "waiting for a Parley server to take it.")
    child = None if servers else cli_session.start_here(settings, host=host, port=port, provider="builtin")
    owner = cli_session.served(settings, run_id, child, hits=False)
    _published(settings, run_id, child)
    if owner.sandbox and not live:
        console.print(f"Take a place as any participant at {owner.url.rstrip('/')}/sandbox/prolific/participant")
    if detach:
        cli_session.leave(run_id, owner, child)
        return
    ended = cli_session.watch_run(settings, run_id, loaded.caps.target_conversations)
    if ended is None and cli_session.choose(on_exit, run_id) == "leave":
        cli_session.leave(run_id, owner, child)
        return
    if ended is None:
        console.print(f"Stopping run {run_id}: its study stops taking people...")
        _guarded(settings, lambda provider, store: stop(provider, store, run_id))
    else:
        console.print(f"Run {run_id} is {ended} (stopped from elsewhere).")
    console.print(_stopped(settings, run_id))
    if child is not None:
        cli_session.end_if_idle(settings, child, owner)


async def stop(provider: ProlificProvider, store: Store, run_id: str) -> None:
    """Stop the run in the database (as `parley stop` does): its owner lets its arriving people go and stops
    its study on its next pass."""
    if await store.get_run(run_id) is None:
        raise ValueError(f"there is no run {run_id} in this database; `parley status` lists the runs")
    await store.set_run_status(run_id, status=RunStatus.STOPPED)
    await provider.records.set_publishing(run_id, publishing=False)


def _published(settings: Settings, run_id: str, child: Child | None) -> None:
    """Wait (bounded) until the run's study takes people, and say which; a server started here is ended if not."""

    async def study(provider: ProlificProvider, store: Store) -> str:
        return await wait_until(f"the study of run {run_id} to be published (its server's log says why)",
                                lambda: _open_study(provider, run_id), timeout=PUBLISH_WAIT_S)

    try:
        found = _guarded(settings, study)
    except (typer.Exit, KeyboardInterrupt):
        if child is not None:
            console.print(f"The server's log: {child.log}")
            cli_session.end(child)
        raise
    console.print(f"Study {found} of run {run_id} takes participants.")


def _stopped(settings: Settings, run_id: str) -> str:
    """Wait (bounded) for the run's owner to stop its study; stop what is still open here (stopping takes no
    lease: it only ever takes fewer people)."""

    async def work(provider: ProlificProvider, store: Store) -> str:
        async def closed() -> bool:
            return not await _open_study(provider, run_id)

        try:
            await wait_until(f"the study of run {run_id} to stop", closed)
            return f"Run {run_id} stopped; its study takes nobody new (those working may still hand in)."
        except ServerError:
            await provider.expire(run_id)
            return f"Run {run_id} stopped; its server had not stopped its study, so this command did."

    return _guarded(settings, work)


@prolific.command("run")
def run(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="task module, e.g. worlds.chat_demo")],
    run_id: Annotated[str, typer.Option(help="default: <task name>-<time>")] = "",
    budget: Annotated[float, typer.Option(help="cap: rewards + Prolific's fee and VAT + bonuses (0: none)")] = 0.0,
    minutes: Annotated[int, typer.Option(help="estimated completion time shown to participants")] = 10,
    live: Annotated[bool, typer.Option("--live", help="recruit on Prolific itself: real money")] = False,
    confirm_spend: Annotated[float, typer.Option(help="confirm the live budget without a prompt")] = -1.0,
    host: Annotated[str, typer.Option(help="where a server started here listens (default: PARLEY_HOST)")] = "",
    port: Annotated[int, typer.Option(help="where a server started here listens (default: PARLEY_PORT)")] = 0,
    detach: Annotated[bool, typer.Option("--detach", help="return once the run's study is published")] = False,
    on_exit: Annotated[str, typer.Option(help="on Ctrl-C: ask | stop (the run) | leave (it running)")] = "ask",
) -> None:
    """The same as `parley run TASK --provider prolific`."""
    run_on_prolific(_settings(ctx), task, run_id=run_id, budget=budget, minutes=minutes, live=live,
                    confirm_spend=confirm_spend, host=host, port=port, detach=detach, on_exit=on_exit)


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
        await _record(store, done, await provider.records.run_of_study(done.recruitment_id))
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
        await _record(store, done, await provider.records.run_of_study(done.recruitment_id))
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
        await provider.records.set_publishing(run_id, publishing=False)
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
