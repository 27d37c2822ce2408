"""`GET /metrics`: the numbers of this process and of the database, in Prometheus' text format.

Gauges that only this process knows (sockets attached, workers in the waiting room, live conversations)
come from the runs it serves; counts and money come from the database, so they are right after a restart.
They are read at each scrape and rendered, with the message path's latency histogram
(`server.metrics.RELAY_LATENCY`), by the app's own registry (`server.metrics.InstanceMetrics`).

Scraping needs the admin credential (`Authorization: Bearer <PARLEY_ADMIN_TOKEN>`), like the dashboard:
the numbers include spend. Prometheus sends it with `authorization: {credentials: ...}` in its scrape config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from server.admin.auth import require_admin
from server.metrics import CONTENT_TYPE, InstanceMetrics
from server.store.review import ReviewStore

if TYPE_CHECKING:
    from server.registry import Runs
    from server.store import Store

Label = TypeVar("Label", bound=str)  # a state's name: plain, or an enum member


async def collect(store: Store, runs: Runs) -> list[Metric]:
    reviews = ReviewStore(store)
    served = list(runs)
    connected = GaugeMetricFamily(
        "parley_connected_workers", "Workers with a socket attached now, per run.", labels=["run"]
    )
    waiting = GaugeMetricFamily("parley_waiting_workers", "Workers in the waiting room now, per run.", labels=["run"])
    live = GaugeMetricFamily(
        "parley_live_conversations", "Conversations running in this process, per run.", labels=["run"]
    )
    for run in served:
        connected.add_metric([run.id], sum(1 for h in run.humans.values() if h.channel.attached))
        waiting.add_metric([run.id], len(run.waiting))
        live.add_metric([run.id], len(run.host.live))
    agents = _by_run("parley_agents", "Agents by state, per run.", await reviews.agent_states(), "state")
    convs = _by_run(
        "parley_conversations", "Task conversations by state, per run.", await reviews.conversation_states(), "state"
    )
    hits = _by_run("parley_hits", "HITs by status, per run.", await reviews.hit_states(), "status")
    messages = CounterMetricFamily(
        "parley_messages_total", "Messages stored, per run (rate() gives the message rate).", labels=["run"]
    )
    for run_id, count in sorted((await reviews.message_counts()).items()):
        messages.add_metric([run_id], count)
    spend = GaugeMetricFamily(
        "parley_spend_dollars", "Spent or committed on MTurk (rewards, fees, bonuses), per run.", labels=["run"]
    )
    for run_id, cents in sorted((await reviews.spend()).items()):
        spend.add_metric([run_id], cents / 100)
    budget = GaugeMetricFamily("parley_budget_dollars", "Budget cap of a published run (0: none).", labels=["run"])
    for run_id, cents in sorted((await reviews.budgets()).items()):
        budget.add_metric([run_id], cents / 100)
    runs_served = GaugeMetricFamily("parley_runs_served", "Task runs this process serves.", value=len(served))
    return [runs_served, connected, waiting, live, agents, convs, hits, messages, spend, budget]


router = APIRouter()


@router.get("/metrics", dependencies=[Depends(require_admin)], include_in_schema=False)
async def metrics(request: Request) -> Response:
    state: Any = request.app.state
    registry: InstanceMetrics = state.metrics
    return Response(registry.render(await collect(state.store, state.runs)), media_type=CONTENT_TYPE)


def _by_run(name: str, help_text: str, counts: Mapping[tuple[str, Label], int], label: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=["run", label])
    for (run_id, value), count in sorted(counts.items()):
        family.add_metric([run_id, value], count)
    return family
