"""`parley`: serve, publish and run a task, watch it, stop it and clean up HITs, review and pay.

The CLI is a client: it registers and steers runs in the database, and the serving Parley instances act on
them (server/cli_servers.py finds them in the database). MTurk defaults to the built-in sandbox of the live
server that serves it; `--provider sandbox` is MTurk's own sandbox; live MTurk needs `--provider live` (and,
for `run`, `--live` with a confirmed maximum spend). Commands: this module (status, review, balance, review
actions), server/cli_run.py (run, serve), server/cli_stop.py (stop, expire, cleanup), server/cli_data.py
(export, agreement).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from server import cli_data, cli_prolific, cli_run, cli_stop  # noqa: F401  (they register their commands)
from server.cli_app import Target, _run, app, console
from server.cli_servers import Owner, owners
from server.hits import HitManager
from server.hits.plan import dollars
from server.states import ConversationState, HitStatus
from server.store.review import ReviewStore

# The HIT columns of `parley status`, in the order its header names them.
SHOWN_HIT_STATUSES = (HitStatus.OPEN, HitStatus.TAKEN, HitStatus.SUBMITTED, HitStatus.REVIEWED)

# ---- watching --------------------------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context) -> None:
    """Runs, their conversations, agents, HITs and spend."""

    async def work(target: Target, manager: HitManager) -> None:
        table = Table("run", "task", "status", "owner", "conversations", "HITs open/taken/submitted/reviewed",
                      "spent + reserved / budget")
        leases = await owners(manager.store)
        for row in await manager.store.runs():
            completed = len(await manager.store.conversations(row.id, states=[ConversationState.COMPLETED]))
            records = await manager.hit_store.hits(row.id)
            count = {s: sum(1 for r in records if r.status == s) for s in SHOWN_HIT_STATUSES}
            plan = await manager.hit_store.plan(row.id)
            money = await manager.hit_store.money(row.id)
            spend = f"${dollars(money.spent_cents)} + ${dollars(money.reserved_cents)}"
            budget = (f"${dollars(plan.budget_cents)}" if plan.budget_cents else "no cap") if plan else "not published"
            owner = leases.get(row.id, Owner("", None))
            table.add_row(row.id, row.task_module, row.status, owner.describe(), str(completed),
                          "/".join(map(str, count.values())), f"{spend} / {budget}")
        console.print(table)

    _run(ctx, work)


@app.command()
def review(ctx: typer.Context, run_id: str, all_work: Annotated[bool, typer.Option("--all")] = False) -> None:
    """Work of a run waiting for review (--all: reviewed work too)."""

    async def work(target: Target, manager: HitManager) -> None:
        statuses = [HitStatus.SUBMITTED, HitStatus.REVIEWED] if all_work else [HitStatus.SUBMITTED]
        flags = {a.agent_id: a.reason for a in await ReviewStore(manager.store).actions_for_run(run_id, action="flag")}
        table = Table("assignment", "worker", "HIT", "MTurk status", "agent state", "conversation")
        for record in await manager.hit_store.hits(run_id, statuses=statuses):
            agent = await manager.store.agent_for_assignment(run_id, assignment_id=record.assignment_id)
            state = agent.state if agent else "-"
            if agent is not None and agent.id in flags:
                state += f" (flagged: {flags[agent.id]})"
            table.add_row(record.assignment_id, record.worker_id, record.hit_id or "", record.assignment_status,
                          state, agent.conversation_id if agent else "-")
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
            ids += [r.assignment_id for r in await manager.hit_store.hits(run_id, statuses=[HitStatus.SUBMITTED])
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
        before = await manager.review.bonus_paid(assignment_id, amount, reason, key=key)
        paid = await manager.review.bonus(assignment_id, amount, reason, key=key)
        said = "already paid (nothing more was sent)" if before else paid.status
        console.print(f"Bonus ${dollars(paid.amount_cents)} to {paid.worker_id}: {said}.")

    _run(ctx, work)


@app.command()
def compensate(
    ctx: typer.Context, worker_id: str,
    amount: Annotated[str, typer.Option(help="USD, at least 0.01")],
    reason: Annotated[str, typer.Option(help="shown to the worker on the HIT")],
    run_id: Annotated[str, typer.Option("--run", help="whose budget pays (default: the worker's latest run)")] = "",
    key: Annotated[str, typer.Option(help="tells apart two compensations alike")] = "",
) -> None:
    """Pay a worker who has no assignment to bonus: a one-assignment HIT only they see, paid on submit. Running
    it again publishes nothing more (and says whether it is paid)."""

    async def work(target: Target, manager: HitManager) -> None:
        paid = await manager.compensations.pay(worker_id, amount, reason, run_id=run_id, key=key)
        console.print(paid.describe())

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


def main() -> None:
    app()
