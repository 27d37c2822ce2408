"""Metrics in Prometheus' text format (0.0.4), written by hand: histograms, metric families, `render`.

`RELAY_LATENCY` is filled by the message path (see `observe_relay`). This module imports only the standard
library, so the agents can feed it without pulling in a web framework; the `/metrics` route that serves
the numbers is `server/admin/metrics.py`.

Every sample carries `parley_instance`, the serving process's id (as in its log and `/healthz`), so the
replicas behind a load balancer are told apart. Not `instance`: Prometheus sets that label itself, to the
scraped address, and would rename ours. Gauges read from the database (agents, conversations, HITs,
messages, spend) are the same on every instance: aggregate them with `max by (run)`, not `sum`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence

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
