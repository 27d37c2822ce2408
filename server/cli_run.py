"""`parley run` and `parley serve`: register a run in the database and have a Parley server serve it.

`parley run` writes the run and its HIT plan, then leaves the serving to the live server of this database
(or starts one, in the background, when none runs), waits until that server holds the run's lease, and
shows the run's progress until Ctrl-C, when it stops the run or leaves it running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
import uvicorn

from server.cli_app import FAILURES, Target, _guard, app, console, with_manager
from server.cli_plan import announce_plan, read_flags
from server.cli_prolific import run_on_prolific
from server.cli_servers import (
    Child,
    ServerError,
    listen_url,
    live_instances,
)
from server.cli_session import (
    ON_EXIT,
    choose,
    end_if_idle,
    leave,
    refuse_a_taken_port,
    served,
    start_here,
    watch_run,
    with_store,
)
from server.cli_stop import stop_and_expire, wait_until_expired
from server.hits import HitManager, check_live, publish_run
from server.hits.admin import check_public_url, publishing_choice
from server.providers.mturk import account_key, endpoint_for
from server.run_flags import RunFlags, check_task
from server.serving import uvicorn_options
from server.settings import Settings
from server.states import RunStatus
from server.store import Store
from server.store.hits import HitPlan, HitStore
from server.store.leases import InstanceRow
from server.tasks import load_task
from worlds.base import Task

T = TypeVar("T")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="default: PARLEY_HOST (127.0.0.1)")] = "",
    port: Annotated[int, typer.Option(help="default: PARLEY_PORT (8000)")] = 0,
) -> None:
    """Serve Parley (its settings come from PARLEY_* variables)."""
    chosen: dict[str, Any] = {"host": host} if host else {}
    if port:
        chosen["port"] = port
    settings = Settings(**chosen)  # the instance registers the address it listens on
    from server.main import create_app  # here: importing server.main builds its app from the environment

    app_ = create_app(settings)
    uvicorn.run(app_, host=settings.host, port=settings.port, **uvicorn_options(settings))


@dataclass(frozen=True)
class Registered:
    """A run written to the database: its HIT plan, and the live servers of the database that can serve it."""

    plan: HitPlan
    servers: list[InstanceRow]


async def register(
    store: Store, settings: Settings, *, run_id: str, module: str, task: Task, provider: str, endpoint_url: str,
    listen: str, budget: float, live: bool, question: str, assignments: int, flags: RunFlags | None = None,
) -> Registered:
    """Write the run (active) and its HIT plan; refuse when this database's live servers use another MTurk."""
    instances = await live_instances(store)
    servers = [i for i in instances if i.sandbox == (provider == "builtin")]
    if instances and not servers:
        kind = "do not serve" if provider == "builtin" else "serve"
        raise ServerError(
            f"the live Parley server(s) of this database ({', '.join(i.id for i in instances)}) {kind} the built-in "
            f"MTurk sandbox, so none would publish this run on the {provider} provider: run with their provider "
            f"(PARLEY_PROVIDER), or stop them and run again"
        )
    flags = flags or RunFlags()
    existing = await store.get_run(run_id)
    if existing is not None and existing.task_module != module:
        raise ValueError(f"run {run_id} already exists for {existing.task_module}, not {module}: use a new --run-id")
    if existing is not None and existing.options != flags.options():
        raise ValueError(f"run {run_id} already exists with other flags ({existing.options or 'none'}): run it "
                         "again with the same flags, or use a new --run-id")
    sandbox = servers[0].url if servers and provider == "builtin" else listen
    endpoint = endpoint_for(provider, public_url=sandbox, endpoint_url=endpoint_url)
    plan = await publish_run(
        HitStore(store), run_id=run_id, account=account_key(endpoint), task=task, budget_usd=budget, live=live,
        public_url=settings.public_url, question=question, assignments=assignments,
        lifetime_s=settings.hit_lifetime_s, max_hits=flags.hits or 0,
    )
    await store.ensure_run(run_id, task_module=module, options=flags.options())
    await store.set_run_status(run_id, status=RunStatus.ACTIVE)  # running a stopped run again resumes it
    return Registered(plan=plan, servers=servers)




@app.command()
def run(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="task module, e.g. worlds.chat_demo")],
    run_id: Annotated[str, typer.Option(help="default: <task name>-<time>")] = "",
    budget: Annotated[float, typer.Option(help="budget cap in USD: reward + fees + bonuses (0: none)")] = 0.0,
    live: Annotated[bool, typer.Option("--live", help="publish on LIVE MTurk: real money")] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="publish on MTurk's own sandbox (needs an https:// "
                                                            "PARLEY_PUBLIC_URL)")] = False,
    confirm_spend: Annotated[float, typer.Option(help="confirm the live budget without a prompt")] = -1.0,
    question: Annotated[str, typer.Option(
        help="html: one HTMLQuestion HIT per item (tasks with a form, e.g. worlds.static_form); external: "
             "Parley's task page. Default: html when the task has a form")] = "",
    hits: Annotated[int | None, typer.Option("--hits", "-nh", help="HITs to publish in all (default: as many "
                                                                   "as the target needs)")] = None,
    assignments: Annotated[int | None, typer.Option("--assignments", "-na", help="assignments per HIT: 1 for "
                                                    "ExternalQuestion runs, 1..9 for html ones")] = None,
    reward: Annotated[str, typer.Option("--reward", "-r", help="USD per assignment, at least 0.01")] = "",
    conversations: Annotated[int | None, typer.Option(help="completed conversations to collect")] = None,
    lifetime: Annotated[str, typer.Option(help="a HIT's lifetime, e.g. 30m, 4h, 2d (renewed while served)")] = "",
    assignment_duration: Annotated[str, typer.Option(help="time a worker has to submit, e.g. 1h")] = "",
    max_conversations: Annotated[int | None, typer.Option(help="conversations at once")] = None,
    per_worker: Annotated[int | None, typer.Option(help="units one worker may do in all")] = None,
    locale: Annotated[list[str] | None, typer.Option(help="worker locale: US, US-CA (repeat, or a,b)")] = None,
    min_approval_rate: Annotated[int | None, typer.Option(help="percent of approved assignments")] = None,
    min_approved_hits: Annotated[int | None, typer.Option(help="approved HITs at least")] = None,
    masters: Annotated[bool, typer.Option("--masters", help="MTurk Masters only")] = False,
    allow_list: Annotated[str, typer.Option(help="file of worker ids: only they see the HITs")] = "",
    block_list: Annotated[str, typer.Option(help="file of worker ids who never see the HITs")] = "",
    qualification: Annotated[list[str] | None, typer.Option(
        help="a requirement in MTurk's shape, as JSON (repeat)")] = None,
    host: Annotated[str, typer.Option(help="where a server started here listens (default: PARLEY_HOST)")] = "",
    port: Annotated[int, typer.Option(help="where a server started here listens (default: PARLEY_PORT)")] = 0,
    detach: Annotated[bool, typer.Option("--detach", help="return once the run is served")] = False,
    on_exit: Annotated[str, typer.Option(help="on Ctrl-C: ask | stop (the run) | leave (it running)")] = "ask",
    recruit_on: Annotated[str, typer.Option("--provider", help="where people are recruited: mturk | prolific (the "
                                            "built-in Prolific unless --live, see `parley prolific run`)")] = "mturk",
) -> None:
    """Register a task's run and have this database's Parley server serve and publish it (starting one in the
    background when none runs): on the built-in sandbox unless --sandbox, --live or --provider says otherwise.
    The flags override the task's declaration; docs/mturk.md has a worked example of each."""
    target: Target = ctx.obj
    if recruit_on == "prolific" and not (question or assignments):
        run_on_prolific(target.settings, task, run_id=run_id, budget=budget, minutes=10, live=live,
                        confirm_spend=confirm_spend, host=host, port=port, detach=detach, on_exit=on_exit)
        return
    if recruit_on != "mturk":
        raise typer.BadParameter("--provider is mturk or prolific (--question and --assignments are MTurk's); "
                                 "for MTurk's sandbox or live endpoint use `parley --provider sandbox|live run`")
    if on_exit not in ON_EXIT:
        raise typer.BadParameter(f"--on-exit must be one of {', '.join(ON_EXIT)}")
    if live and sandbox:
        raise typer.BadParameter("--live and --sandbox name two different MTurks: give one")
    chosen = "builtin" if target.provider == "live" else target.provider  # live MTurk only with --live
    provider = "live" if live else "sandbox" if sandbox else chosen
    settings = target.settings
    host, port = host or settings.host, port or settings.port
    flags = read_flags(hits=hits, assignments=assignments, reward=reward, conversations=conversations,
                      lifetime=lifetime, assignment_duration=assignment_duration, max_conversations=max_conversations,
                   per_worker=per_worker, locale=locale, min_approval_rate=min_approval_rate,
                   min_approved_hits=min_approved_hits, masters=masters, allow_list=allow_list,
                   block_list=block_list, qualification=qualification)
    loaded, per_hit = _checked(task, flags, live=live, provider=provider, budget=budget,
                               public_url=settings.public_url, question=question)
    run_id = run_id or f"{loaded.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    announce_plan(run_id, loaded, flags, provider=provider, budget=budget, question=per_hit,
                   default_lifetime_s=settings.hit_lifetime_s)
    if live and confirm_spend != budget:
        typer.confirm(
            f"Publish run {run_id} on LIVE MTurk, spending up to ${budget:.2f} of real money?", abort=True
        )
    if not _guard(with_store(settings, live_instances)):
        refuse_a_taken_port(host, port)  # before anything is written
    registered = _guard(with_store(settings, lambda store: register(
        store, settings, run_id=run_id, module=task, task=loaded, provider=provider,
        endpoint_url=target.endpoint_url, listen=listen_url(host, port), budget=budget, live=live,
        question=question, assignments=flags.assignments or 0, flags=flags,
    )))
    console.print(f"Run [bold]{run_id}[/bold] is registered on {registered.plan.account}; waiting for a Parley "
                  "server to take it.")
    child = None if registered.servers else start_here(settings, host=host, port=port, provider=provider)
    owner = served(settings, run_id, child)
    if detach:
        leave(run_id, owner, child)
        return
    steer = Target(settings=settings, provider=provider, endpoint_url=target.endpoint_url)
    _follow(steer, run_id, loaded.caps.target_conversations, on_exit=on_exit, owner=owner, child=child)


def _checked(
    task: str, flags: RunFlags, *, live: bool, provider: str, budget: float, public_url: str, question: str
) -> tuple[Task, tuple[str, int]]:
    """The task with the flags over it and its (question kind, assignments per HIT), once the provider's rules
    allow them; refused before anything is written."""
    try:
        check_live(live=live, budget_usd=budget, public_url=public_url)
        check_public_url(provider, public_url)
        loaded = load_task(task, flags.options())
        check_task(loaded)
        per_hit = publishing_choice(loaded, question, flags.assignments or 0)
    except FAILURES as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    return loaded, per_hit




def _follow(target: Target, run_id: str, goal: int, *, on_exit: str, owner: InstanceRow, child: Child | None) -> None:
    """Show the run's progress until Ctrl-C (then stop it or leave it) or until it is stopped from elsewhere."""
    settings = target.settings
    ended = watch_run(settings, run_id, goal)
    if ended is None and choose(on_exit, run_id) == "leave":
        leave(run_id, owner, child)
        return
    if ended is None:
        console.print(_stop(target, run_id))
    else:
        console.print(f"Run {run_id} is {ended} (stopped from elsewhere).")
        if child is not None:  # its server expires the run's open HITs first
            _guard(with_store(settings, lambda store: wait_until_expired(HitStore(store), run_id)))
    if child is not None:
        end_if_idle(settings, child, owner)












def _stop(target: Target, run_id: str) -> str:
    async def work(_: Target, manager: HitManager) -> str:
        return (await stop_and_expire(manager, run_id)).describe()

    console.print(f"Stopping run {run_id}: waiting for its server to expire its open HITs...")
    return with_manager(target, work)



