"""`GET /metrics` in Prometheus' text format (0.0.4), written by hand: no client library needed.

Gauges that only this process knows (sockets attached, workers in the waiting room, live conversations)
come from the runs it serves; counts and money come from the database, so they are right after a restart.
`RELAY_LATENCY` is filled by the message path (see `observe_relay`); this module imports nothing above the
store, so the channel and agents can feed it.

Every sample carries `parley_instance`, the serving process's id (as in its log and `/healthz`), so the
replicas behind a load balancer are told apart. Not `instance`: Prometheus sets that label itself, to the
scraped address, and would rename ours. Gauges read from the database (agents, conversations, HITs,
messages, spend) are the same on every instance: aggregate them with `max by (run)`, not `sum`.

Scraping needs the admin credential (`Authorization: Bearer <PARLEY_ADMIN_TOKEN>`), like the dashboard:
the numbers include spend. Prometheus sends it with `authorization: {credentials: ...}` in its scrape config.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from server.admin.auth import require_admin
from server.store.review import ReviewStore

if TYPE_CHECKING:
    from server.registry import Runs
    from server.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INSTANCE_LABEL = "parley_instance"


class Histogram:
    """A Prometheus histogram: cumulative buckets, a sum and a count. Single event loop, so no lock."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.help = help_text
        self.bounds = sorted(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, common: Mapping[str, str] = {}) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, count in zip([*self.bounds, math.inf], self.counts, strict=True):
            running += count
            out.append(f"{self.name}_bucket{_labels({**common, 'le': _number(bound)})} {running}")
        labels = _labels(common)
        out += [f"{self.name}_sum{labels} {_number(self.sum)}", f"{self.name}_count{labels} {self.count}"]
        return out


RELAY_LATENCY = Histogram(
    "parley_relay_latency_seconds",
    "Time from a worker's message arriving to its being stored, acked and delivered.",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
)


def observe_relay(seconds: float) -> None:
    RELAY_LATENCY.observe(seconds)


class Family:
    """One metric family: a name, a type, a help line and labelled samples."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.samples: list[tuple[dict[str, str], float]] = []

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((labels, value))
        return self

    def lines(self, common: Mapping[str, str] = {}) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            out.append(f"{self.name}{_labels({**common, **dict(sorted(labels.items()))})} {_number(value)}")
        return out


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


def render(
    families: Iterable[Family], histograms: Iterable[Histogram] = (RELAY_LATENCY,), *, instance: str = ""
) -> str:
    """The text format; with `instance`, every sample is labelled with it (`parley_instance`)."""
    common = {INSTANCE_LABEL: instance} if instance else {}
    lines: list[str] = []
    for family in families:
        lines += family.lines(common)
    for histogram in histograms:
        lines += histogram.lines(common)
    return "\n".join(lines) + "\n"


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


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(labels: Mapping[str, str]) -> str:
    """`{k="v",...}` in the order given, or nothing when there are none."""
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
