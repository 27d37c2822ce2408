"""`GET /metrics`: the numbers of this process and of the database, in Prometheus' text format.

Gauges that only this process knows (sockets attached, workers in the waiting room, live conversations)
come from the runs it serves; counts and money come from the database, so they are right after a restart.
The message path's latency histogram is `server.metrics.RELAY_LATENCY`.

Scraping needs the admin credential (`Authorization: Bearer <PARLEY_ADMIN_TOKEN>`), like the dashboard:
the numbers include spend. Prometheus sends it with `authorization: {credentials: ...}` in its scrape config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from server.admin.auth import require_admin
from server.metrics import CONTENT_TYPE, Family, render
from server.store.review import ReviewStore

if TYPE_CHECKING:
    from server.registry import Runs
    from server.store import Store


async def collect(store: Store, runs: Runs) -> list[Family]:
    reviews = ReviewStore(store)
    served = list(runs)
    connected = Family("parley_connected_workers", "gauge", "Workers with a socket attached now, per run.")
    waiting = Family("parley_waiting_workers", "gauge", "Workers in the waiting room now, per run.")
    live = Family("parley_live_conversations", "gauge", "Conversations running in this process, per run.")
    for run in served:
        connected.add(sum(1 for h in run.humans.values() if h.channel.attached), run=run.id)
        waiting.add(len(run.waiting), run=run.id)
        live.add(len(run.host.live), run=run.id)
    agents = _family("parley_agents", "gauge", "Agents by state, per run.", await reviews.agent_states(), "state")
    convs = _family(
        "parley_conversations", "gauge", "Task conversations by state, per run.",
        await reviews.conversation_states(), "state",
    )
    hits = _family("parley_hits", "gauge", "HITs by status, per run.", await reviews.hit_states(), "status")
    messages = Family("parley_messages_total", "counter", "Messages stored, per run (rate() gives the message rate).")
    for run_id, count in sorted((await reviews.message_counts()).items()):
        messages.add(count, run=run_id)
    spend = Family("parley_spend_dollars", "gauge", "Spent or committed on MTurk (rewards, fees, bonuses), per run.")
    for run_id, cents in sorted((await reviews.spend()).items()):
        spend.add(cents / 100, run=run_id)
    budget = Family("parley_budget_dollars", "gauge", "Budget cap of a published run (0: none).")
    for run_id, cents in sorted((await reviews.budgets()).items()):
        budget.add(cents / 100, run=run_id)
    runs_served = Family("parley_runs_served", "gauge", "Task runs this process serves.").add(len(served))
    return [runs_served, connected, waiting, live, agents, convs, hits, messages, spend, budget]


router = APIRouter()


@router.get("/metrics", dependencies=[Depends(require_admin)], include_in_schema=False)
async def metrics(request: Request) -> PlainTextResponse:
    state: Any = request.app.state
    text = render(await collect(state.store, state.runs), instance=state.ownership.id)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


def _family(name: str, kind: str, help_text: str, counts: dict[tuple[str, str], int], label: str) -> Family:
    family = Family(name, kind, help_text)
    for (run_id, value), count in sorted(counts.items()):
        family.add(count, run=run_id, **{label: value})
    return family
