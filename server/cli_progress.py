"""What `parley run` shows while it runs: a run's progress read from the database, about once a second."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rich.live import Live
from rich.table import Table

from server.cli_servers import Owner, owner_of
from server.hits.plan import dollars
from server.states import AgentState, ConversationState, HitStatus, RunStatus
from server.store import Store
from server.store.hits import HitStore

S = AgentState
H = HitStatus
HIT_COLUMNS = {"open": (H.CREATING, H.OPEN), "taken": (H.TAKEN,), "submitted": (H.SUBMITTED,),
               "reviewed": (H.REVIEWED,)}
WORKER_COLUMNS = {"onboarding": (S.JOINED, S.ONBOARDING), "waiting": (S.WAITING,),
                  "in a conversation": (S.IN_TASK,)}
REFRESH_S = 1.0


@dataclass(frozen=True)
class Snapshot:
    """One reading of a run's progress."""

    run_id: str
    status: str
    hits: dict[str, int]
    workers: dict[str, int]
    completed: int
    target: int
    spent_cents: int
    reserved_cents: int
    budget_cents: int
    owner: Owner


async def snapshot(store: Store, run_id: str, target: int) -> Snapshot:
    hit_store = HitStore(store)
    row = await store.get_run(run_id)
    records = await hit_store.hits(run_id)
    agents = await store.agents(run_id, states=[s for states in WORKER_COLUMNS.values() for s in states])
    plan = await hit_store.plan(run_id)
    money = await hit_store.money(run_id)
    return Snapshot(
        run_id=run_id, status=row.status if row else "gone",
        hits={name: sum(1 for r in records if r.status in states) for name, states in HIT_COLUMNS.items()},
        workers={name: sum(1 for a in agents if a.state in states) for name, states in WORKER_COLUMNS.items()},
        completed=len(await store.conversations(run_id, states=[ConversationState.COMPLETED])), target=target,
        spent_cents=money.spent_cents, reserved_cents=money.reserved_cents,
        budget_cents=plan.budget_cents if plan else 0, owner=await owner_of(store, run_id),
    )


def render(shown: Snapshot) -> Table:
    table = Table(title=f"Run {shown.run_id} ({shown.status}) - Ctrl-C to stop it or leave it running",
                  show_header=False, title_justify="left")
    table.add_row("HITs", ", ".join(f"{count} {name}" for name, count in shown.hits.items()))
    table.add_row("workers", ", ".join(f"{count} {name}" for name, count in shown.workers.items()))
    table.add_row("conversations", f"{shown.completed} completed of {shown.target}")
    budget = f"${dollars(shown.budget_cents)}" if shown.budget_cents else "no cap"
    table.add_row("spend", f"${dollars(shown.spent_cents)} spent + ${dollars(shown.reserved_cents)} reserved "
                           f"of {budget}")
    table.add_row("served by", shown.owner.describe())
    return table


async def watch(store: Store, run_id: str, target: int, live: Live) -> Snapshot:
    """Show the run's progress until it is no longer active (stopped from elsewhere); Ctrl-C ends it earlier."""
    while True:
        shown = await snapshot(store, run_id, target)
        live.update(render(shown), refresh=True)
        if shown.status != RunStatus.ACTIVE:
            return shown
        await asyncio.sleep(REFRESH_S)
