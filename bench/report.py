"""From the workers' raw records to the figures: latency, throughput, pairing, loss, memory, CPU."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

TARGETS = {
    "relay_p99_ms": 50.0,
    "saturation_ratio": 0.5,
    "rss_per_worker_kb": 100.0,
    "join_to_paired_waiting_p95_ms": 1000.0,
}
# Several instances against one, in the same run (`--instances N`).
SCALE_TARGETS = {
    "cross_relay_p99_ms": 50.0,  # steady, between two workers on different instances
    "cpu_per_message_ratio": 1.5,  # server CPU per delivered message, all instances over one instance
}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def _ms(values: list[float]) -> dict[str, float | None]:
    out = {f"p{q}": percentile(values, q) for q in (50, 95, 99)}
    out["max"] = max(values) if values else None
    return {k: (round(v * 1000, 2) if v is not None else None) for k, v in out.items()}


def delivery_check(workers: list[dict[str, Any]]) -> dict[str, int]:
    """Every acked message must reach the partner exactly once, and only the partner."""
    acked = {cid for w in workers for cid in w["acked"]}
    received: Counter[str] = Counter()
    for w in workers:
        received.update(w["got"])
    partner = {w["worker"]: w["senders"][0] for w in workers if len(w["senders"]) == 1}
    return {
        "acked": len(acked),
        "delivered": sum(received.values()),
        "lost": sum(1 for cid in acked if received[cid] == 0),
        "duplicated": sum(n - 1 for n in received.values() if n > 1),
        "delivered_unacked": sum(1 for cid in received if cid not in acked),
        "sent_unacked": sum(w["unacked"] for w in workers),
        "misrouted": sum(1 for w in workers if len(w["senders"]) > 1)
        + sum(1 for a, b in partner.items() if partner.get(b) not in (None, a)),
    }


def pairing(workers: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Join to paired, for everyone and for the worker who arrived when its partner was already waiting."""
    by_id = {w["worker"]: w for w in workers}
    every = [w["t_paired"] - w["t_join"] for w in workers if w["t_paired"]]
    second: list[float] = []
    for w in workers:
        if len(w["senders"]) == 1 and w["t_paired"]:
            other = by_id.get(w["senders"][0])
            if other is not None and other["t_join"] < w["t_join"]:
                second.append(w["t_paired"] - w["t_join"])
    return {"all": _ms(every), "partner_waiting": _ms(second)}


def summarize(raw: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    workers = raw["records"]["workers"]
    latencies = raw["records"]["latencies"]
    steady, sat = raw["steady"], raw["saturate"]
    steady_lat = [r - s for s, r in latencies if steady["start"] <= s < steady["until"]]
    sat_from = sat["start"] + opts["saturate_warmup_s"]
    sat_window = sat["until"] - sat_from
    sat_lat = [r - s for s, r in latencies if sat_from <= r < sat["until"]]
    steady_len = steady["until"] - steady["start"]
    sat_len = sat["until"] - sat["start"]
    # Every message received while the server's CPU was being measured (the whole phase), for CPU per message.
    sat_received = sum(1 for _, r in latencies if sat["start"] <= r < sat["until"])
    steady_received = sum(1 for _, r in latencies if steady["start"] <= r < steady["until"])
    errors: Counter[str] = Counter()
    for w in workers:
        errors.update(w["errors"])
    paired = sum(1 for w in workers if w["t_paired"])
    rss_per_worker = (raw["connected_rss"] - raw["idle_rss"]) / paired if paired else None
    return {
        "server": raw["server"],
        "workers": len(workers),
        "paired": paired,
        "finished": sum(1 for w in workers if w["finished"]),
        "join_to_paired_ms": pairing(workers),
        "arrival": {
            "seconds": round(raw["arrive"]["until"] - raw["arrive"]["start"], 1),
            "server_cpu_ms_per_worker": round(1000 * raw["arrive"]["server_cpu_s"] / paired, 2) if paired else None,
        },
        "steady": {
            "relay_ms": _ms(steady_lat),
            "messages": len(steady_lat),
            "delivered_per_s": round(len(steady_lat) / steady_len, 1),
            "server_cpu_pct": round(100 * steady["server_cpu_s"] / steady_len, 1),
            "client_cpu_pct": round(100 * steady["client_cpu_s"] / steady_len, 1),
            "server_cpu_ms_per_message": _per(steady["server_cpu_s"], steady_received),
        },
        "saturation": {
            "delivered_per_s": round(len(sat_lat) / sat_window, 1) if sat_window > 0 else None,
            "relay_ms": _ms(sat_lat),
            "server_cpu_pct": round(100 * sat["server_cpu_s"] / sat_len, 1),
            "client_cpu_pct": round(100 * sat["client_cpu_s"] / sat_len, 1),
            "server_cpu_ms_per_message": _per(sat["server_cpu_s"], sat_received),
        },
        "instances": raw.get("instances", 1),
        "cross_instance": _cross_instance(workers, raw["records"].get("cross_latencies", []), steady),
        "delivery": delivery_check(workers),
        "errors": dict(errors),
        "error_count": sum(errors.values()),
        "memory": {
            "idle_rss_mb": round(raw["idle_rss"] / 2**20, 1),
            "connected_rss_mb": round(raw["connected_rss"] / 2**20, 1),
            "peak_rss_mb": round(raw["peak_rss"] / 2**20, 1),
            "rss_per_worker_kb": round(rss_per_worker / 1024, 1) if rss_per_worker is not None else None,
        },
        "profile": raw["profile"],
    }


def _per(cpu_s: float, messages: int) -> float | None:
    return round(1000 * cpu_s / messages, 3) if messages else None


def _cross_instance(workers: list[dict[str, Any]], cross: list[list[float]], steady: dict[str, Any]) -> dict[str, Any]:
    """How many pairs spanned two instances, and the steady relay latency between them."""
    by_id = {w["worker"]: w for w in workers}
    paired = [w for w in workers if len(w["senders"]) == 1 and w["senders"][0] in by_id]
    across = [w for w in paired if by_id[w["senders"][0]].get("instance", 0) != w.get("instance", 0)]
    steady_cross = [r - s for s, r in cross if steady["start"] <= s < steady["until"]]
    return {
        "workers_paired_across": len(across),
        "workers_paired": len(paired),
        "steady_relay_ms": _ms(steady_cross),
        "steady_messages": len(steady_cross),
    }


def scale_verdict(one: dict[str, Any], several: dict[str, Any]) -> dict[str, Any]:
    """Several instances against one: relay between instances, CPU per message, nothing lost."""
    one_cpu = one["saturation"]["server_cpu_ms_per_message"]
    several_cpu = several["saturation"]["server_cpu_ms_per_message"]
    ratio = round(several_cpu / one_cpu, 2) if one_cpu and several_cpu else None
    figures = {
        "cross_relay_p99_ms": several["cross_instance"]["steady_relay_ms"]["p99"],
        "cpu_per_message_ratio": ratio,
        "delivered_per_s_one": one["saturation"]["delivered_per_s"],
        "delivered_per_s_several": several["saturation"]["delivered_per_s"],
    }
    met = {
        "cross_relay_p99_ms": figures["cross_relay_p99_ms"] is not None
        and figures["cross_relay_p99_ms"] <= SCALE_TARGETS["cross_relay_p99_ms"],
        "cpu_per_message_ratio": ratio is not None and ratio <= SCALE_TARGETS["cpu_per_message_ratio"],
        "no_errors": several["error_count"] == 0,
        "no_loss": several["delivery"]["lost"] == 0 and several["delivery"]["duplicated"] == 0
        and several["delivery"]["misrouted"] == 0,
    }
    return {"figures": figures, "targets": SCALE_TARGETS, "met": met}


def verdict(parley: dict[str, Any], echo: dict[str, Any] | None) -> dict[str, Any]:
    ratio = None
    if echo is not None and echo["saturation"]["delivered_per_s"]:
        ratio = round(parley["saturation"]["delivered_per_s"] / echo["saturation"]["delivered_per_s"], 3)
    checks = {
        "relay_p99_ms": parley["steady"]["relay_ms"]["p99"],
        "saturation_ratio": ratio,
        "rss_per_worker_kb": parley["memory"]["rss_per_worker_kb"],
        "join_to_paired_waiting_p95_ms": parley["join_to_paired_ms"]["partner_waiting"]["p95"],
    }
    met = {
        "relay_p99_ms": checks["relay_p99_ms"] is not None and checks["relay_p99_ms"] <= TARGETS["relay_p99_ms"],
        "saturation_ratio": ratio is not None and ratio >= TARGETS["saturation_ratio"],
        "rss_per_worker_kb": checks["rss_per_worker_kb"] is not None
        and checks["rss_per_worker_kb"] <= TARGETS["rss_per_worker_kb"],
        "join_to_paired_waiting_p95_ms": checks["join_to_paired_waiting_p95_ms"] is not None
        and checks["join_to_paired_waiting_p95_ms"] <= TARGETS["join_to_paired_waiting_p95_ms"],
        "no_errors": parley["error_count"] == 0,
        "no_loss": parley["delivery"]["lost"] == 0 and parley["delivery"]["duplicated"] == 0
        and parley["delivery"]["misrouted"] == 0,
    }
    return {"figures": checks, "targets": TARGETS, "met": met}


def table(results: dict[str, dict[str, Any]], verdict_: dict[str, Any]) -> str:
    names = list(results)
    rows: list[tuple[str, ...]] = [("", *names)]

    def row(label: str, get: Any) -> None:
        cells = []
        for n in names:
            try:
                value = get(results[n])
            except (KeyError, TypeError):
                value = None
            cells.append("-" if value is None else str(value))
        rows.append((label, *cells))

    row("workers paired / finished", lambda r: f"{r['paired']}/{r['workers']} / {r['finished']}")
    row("join->paired p50/p95 ms (all)", lambda r: "{p50} / {p95}".format(**r["join_to_paired_ms"]["all"]))
    row("join->paired p50/p95 ms (partner waiting)",
        lambda r: "{p50} / {p95}".format(**r["join_to_paired_ms"]["partner_waiting"]))
    row("arrival s / server CPU ms per worker",
        lambda r: f"{r['arrival']['seconds']} / {r['arrival']['server_cpu_ms_per_worker']}")
    row("steady relay p50/p95/p99/max ms", lambda r: "{p50} / {p95} / {p99} / {max}".format(**r["steady"]["relay_ms"]))
    row("steady delivered msg/s", lambda r: r["steady"]["delivered_per_s"])
    row("steady server / client CPU %",
        lambda r: f"{r['steady']['server_cpu_pct']} / {r['steady']['client_cpu_pct']}")
    row("saturation delivered msg/s", lambda r: r["saturation"]["delivered_per_s"])
    row("saturation relay p50/p99 ms", lambda r: "{p50} / {p99}".format(**r["saturation"]["relay_ms"]))
    row("saturation server / client CPU %",
        lambda r: f"{r['saturation']['server_cpu_pct']} / {r['saturation']['client_cpu_pct']}")
    row("server CPU ms per message steady / saturation",
        lambda r: f"{r['steady']['server_cpu_ms_per_message']} / {r['saturation']['server_cpu_ms_per_message']}")
    row("instances / workers paired across",
        lambda r: f"{r['instances']} / {r['cross_instance']['workers_paired_across']}")
    row("cross-instance steady relay p50/p99 ms",
        lambda r: "{p50} / {p99}".format(**r["cross_instance"]["steady_relay_ms"]))
    row("acked / delivered", lambda r: f"{r['delivery']['acked']} / {r['delivery']['delivered']}")
    row("lost / duplicated / misrouted",
        lambda r: "{lost} / {duplicated} / {misrouted}".format(**r["delivery"]))
    row("errors", lambda r: r["error_count"] if not r["errors"] else f"{r['error_count']} {r['errors']}")
    row("RSS idle / connected / peak MB",
        lambda r: "{idle_rss_mb} / {connected_rss_mb} / {peak_rss_mb}".format(**r["memory"]))
    row("RSS per connected worker KB", lambda r: r["memory"]["rss_per_worker_kb"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    targets = {**TARGETS, **verdict_.get("targets", {})}
    for key, ok in verdict_["met"].items():
        figure = verdict_["figures"].get(key, "")
        target = targets.get(key, "")
        lines.append(f"{'PASS' if ok else 'FAIL'}  {key} {figure if figure is not None else '-'}"
                     + (f" (target {target})" if target != "" else ""))
    return "\n".join(lines)
