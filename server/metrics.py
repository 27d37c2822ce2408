"""Metrics through prometheus-client: the message path's latency histogram and each app's registry.

`RELAY_LATENCY` is filled by the message path (see `observe_relay`). prometheus-client pulls in no web
framework, so the agents can feed it; the `/metrics` route that serves the numbers is
`server/admin/metrics.py`. `observe_relay` costs about 0.7 µs a call against 0.17 µs for the hand-written
histogram this replaced (timeit, dev machine): about 0.3 % of the ~199 µs of server CPU a message takes
(docs/performance.md), so the maintained library wins.

Every sample carries `parley_instance`, the serving process's id (as in its log and `/healthz`), so the
replicas behind a load balancer are told apart. Not `instance`: Prometheus sets that label itself, to the
scraped address, and would rename ours. Gauges read from the database (agents, conversations, HITs,
messages, spend) are the same on every instance: aggregate them with `max by (run)`, not `sum`.

Each app has its own registry (`InstanceMetrics`), so several apps in one process (the tests) never
collide; the relay histogram belongs to the process, as the message path does, and every registry reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
INSTANCE_LABEL = "parley_instance"

RELAY_LATENCY = Histogram(
    "parley_relay_latency_seconds",
    "Time from a worker's message arriving to its being stored, acked and delivered.",
    buckets=[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
    registry=None,  # not the library's global registry: each app's `InstanceMetrics` reads it
)


def observe_relay(seconds: float) -> None:
    RELAY_LATENCY.observe(seconds)


class InstanceMetrics(Collector):
    """One app's registry: the families its `/metrics` route reads at scrape time (from the database and
    the runs it serves) and the process's histograms, each sample labelled with the instance."""

    def __init__(self, instance: str, histograms: Iterable[Collector] = (RELAY_LATENCY,)) -> None:
        self.instance = instance
        self.histograms = list(histograms)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._read: list[Metric] = []

    def render(self, read: Iterable[Metric] = ()) -> bytes:
        """The text format (0.0.4) of `read`, then of the histograms. Synchronous: no other scrape's
        families can slip in between."""
        self._read = list(read)
        try:
            return generate_latest(self.registry)
        finally:
            self._read = []

    def collect(self) -> Iterator[Metric]:
        common = {INSTANCE_LABEL: self.instance} if self.instance else {}
        for metric in [*self._read, *(m for h in self.histograms for m in h.collect())]:
            labelled = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            labelled.samples = [
                sample._replace(labels={**common, **sample.labels})
                for sample in metric.samples
                if sample.name != f"{metric.name}_created"  # OpenMetrics' start time: a series of its own in 0.0.4
            ]
            yield labelled
