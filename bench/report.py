"""From the workers' raw records to the figures: latency, throughput, pairing, loss, memory, CPU."""

from __future__ import annotations

import math
import os
from collections import Counter
from typing import Any

TARGETS = {
    "relay_p99_ms": 50.0,
    "saturation_ratio": 0.5,  # Parley's delivered msg/s over the bare relay's, both server-bound
    "server_cpu_ratio": 0.5,  # the relay's server CPU per delivered message over Parley's: the figure to quote
    "rss_per_worker_kb": 100.0,
    "join_to_paired_waiting_p95_ms": 1000.0,
}
# A client process above this share of one core in a phase may be what paced that phase: no throughput
# ratio is printed then (`client_bound`).
CLIENT_BUSY_LIMIT_PCT = 85.0
# A server below this share of a core in saturation, its clients not busy either: the phase was not
# server-bound (too few workers in flight, or the machine busy with other work): no throughput ratio either.
SERVER_BUSY_PCT = 90.0
# A server whose event loop waited this share of a phase for a core was held back by other work (a note).
WAITED_PCT = 5.0
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
    arrive, steady, sat = raw["arrive"], raw["steady"], raw["saturate"]
    steady_lat = [r - s for s, r in latencies if steady["start"] <= s < steady["until"]]
    sat_from = sat["start"] + opts["saturate_warmup_s"]
    sat_window = sat["until"] - sat_from
    sat_lat = [r - s for s, r in latencies if sat_from <= r < sat["until"]]
    steady_len = steady["until"] - steady["start"]
    sat_len = sat["until"] - sat["start"]  # 0: no saturation phase (--saturate 0)
    # Every message received while CPU was being measured (the whole phase), for CPU per message.
    sat_received = sum(1 for _, r in latencies if sat["start"] <= r < sat["until"])
    steady_received = sum(1 for _, r in latencies if steady["start"] <= r < steady["until"])
    errors: Counter[str] = Counter()
    for w in workers:
        errors.update(w["errors"])
    paired = sum(1 for w in workers if w["t_paired"])
    rss_per_worker = (raw["connected_rss"] - raw["idle_rss"]) / paired if paired else None
    return {
        "server": raw["server"],
        "client": opts.get("client", "sansio"),
        "client_procs": opts.get("client_procs", 1),
        "workers": len(workers),
        "paired": paired,
        "finished": sum(1 for w in workers if w["finished"]),
        "join_to_paired_ms": pairing(workers),
        "arrival": {
            "seconds": round(arrive["until"] - arrive["start"], 1),
            "server_cpu_ms_per_worker": round(1000 * arrive["server_cpu_s"] / paired, 2) if paired else None,
            "client_cpu_s": round(arrive.get("client_cpu_s", 0.0), 2),
            "load_avg": arrive.get("load_avg"),
        },
        "steady": {
            "relay_ms": _ms(steady_lat),
            "relay_ms_by_window": _windows(latencies, steady["start"], steady["until"]),
            "messages": len(steady_lat),
            "delivered_per_s": round(len(steady_lat) / steady_len, 1),
            **_cpu(steady, steady_len, steady_received),
        },
        "saturation": {
            "delivered_per_s": round(len(sat_lat) / sat_window, 1) if sat_window > 0 else None,
            "relay_ms": _ms(sat_lat),
            **_cpu(sat, sat_len, sat_received),
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


def _windows(latencies: list[list[float]], start: float, until: float, width_s: float = 10.0) -> list[dict[str, Any]]:
    """The steady relay latency in windows of `width_s` by send time: a backlog building up (or another job
    taking the core half-way) shows as a step here, where the phase's percentiles only show a tail."""
    windows: list[list[float]] = [[] for _ in range(max(0, math.ceil((until - start) / width_s)))]
    for sent, received in latencies:
        if start <= sent < until:
            windows[int((sent - start) // width_s)].append(received - sent)
    return [{"from_s": round(k * width_s), "messages": len(w), **{k2: v for k2, v in _ms(w).items() if k2 != "p95"}}
            for k, w in enumerate(windows)]


def _cpu(phase: dict[str, Any], length_s: float, received: int) -> dict[str, Any]:
    """A phase's CPU: the server's and the clients' (all together and the busiest client process), as % of one
    core and per delivered message; the load average at its end."""
    if length_s <= 0:
        return {"server_cpu_pct": None, "client_cpu_pct": None, "client_cpu_pct_max": None,
                "server_cpu_ms_per_message": None, "server_cpu_us_per_message": None,
                "client_cpu_us_per_message": None, "load_avg": None, "server_wait_pct": None,
                "client_wait_pct_max": None, "client_gc_max_ms": None, "client_gc_ms": None}
    by_proc = phase.get("client_cpu_s_by_proc") or [phase["client_cpu_s"]]
    return {
        "server_cpu_pct": round(100 * phase["server_cpu_s"] / length_s, 1),
        "client_cpu_pct": round(100 * phase["client_cpu_s"] / length_s, 1),
        "client_cpu_pct_max": round(100 * max(by_proc) / length_s, 1),
        "server_cpu_ms_per_message": _per(phase["server_cpu_s"], received),
        "server_cpu_us_per_message": _per(phase["server_cpu_s"], received, 1e6, 1),
        "client_cpu_us_per_message": _per(phase["client_cpu_s"], received, 1e6, 1),
        "load_avg": phase.get("load_avg"),
        # Runnable but waiting for a core (the event loop's thread), as % of the phase: other work on the machine.
        "server_wait_pct": round(100 * phase.get("server_wait_s", 0.0) / length_s, 1),
        "client_wait_pct_max": round(100 * max(phase.get("client_wait_s_by_proc") or [0.0]) / length_s, 1),
        # The clients' collector pauses (none unless --client-gc): a pause delays every stamp taken in it.
        "client_gc_max_ms": phase.get("client_gc_max_ms", 0.0),
        "client_gc_ms": phase.get("client_gc_ms", 0.0),
    }


def _per(cpu_s: float, messages: int, unit: float = 1000, digits: int = 3) -> float | None:
    return round(unit * cpu_s / messages, digits) if messages else None


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


def client_bound(result: dict[str, Any], phase: str = "saturation") -> str | None:
    """Why `result`'s phase may have been paced by its clients rather than its server, or None.

    Each client process is one event loop on one core: above CLIENT_BUSY_LIMIT_PCT of a core it is (or is
    close to) the bottleneck, and the server's throughput in that phase is the client's."""
    busiest = result.get(phase, {}).get("client_cpu_pct_max")
    if busiest is None or busiest <= CLIENT_BUSY_LIMIT_PCT:
        return None
    procs = result.get("client_procs", 1)
    return (f"{result['server']}'s {'busiest ' if procs > 1 else ''}client process used {busiest} % of a core in "
            f"the {phase} phase (limit {CLIENT_BUSY_LIMIT_PCT:g} %)")


REFUSAL_ADVICE = (
    "the clients, not the server, may have set the pace, so a throughput ratio would measure the client. "
    "Give the clients more room: --client sansio (the cheap client, the default), more client processes "
    "(--client-procs N, fewer workers in each), nothing else running on the machine, or the clients on "
    "another machine. Server CPU per delivered message is still reported below: compare that."
)


def cpu_ratio(parley: dict[str, Any], echo: dict[str, Any]) -> float | None:
    """The bare relay's server CPU per delivered message over Parley's, in saturation: the figure to quote.
    It does not depend on how hard the clients could push, only on what each server spends on a message."""
    mine = parley["saturation"].get("server_cpu_us_per_message")
    bare = echo["saturation"].get("server_cpu_us_per_message")
    return round(bare / mine, 3) if mine and bare else None


def server_bound(result: dict[str, Any]) -> str | None:
    """Why `result`'s saturation phase was not bound by its server, or None: the server under
    SERVER_BUSY_PCT of a core while its clients were not the bottleneck either."""
    server_pct = result["saturation"].get("server_cpu_pct")
    if client_bound(result) or server_pct is None or server_pct >= SERVER_BUSY_PCT:
        return None
    return (f"{result['server']}'s server used {server_pct} % of a core in the saturation phase (at least "
            f"{SERVER_BUSY_PCT:g} % wanted) and its clients were not the bottleneck either: too few workers in "
            f"flight for its latency (more --workers), or other work on the machine took the core (its event loop "
            f"waited {result['saturation'].get('server_wait_pct')} % of the phase for a core; load average "
            f"{result['saturation'].get('load_avg')} on {os.cpu_count()} cores; run it on a quiet machine)")


def verdict(parley: dict[str, Any], echo: dict[str, Any] | None) -> dict[str, Any]:
    ratio = None
    refused: dict[str, str] = {}
    notes: list[str] = []
    if echo is not None and echo["saturation"]["delivered_per_s"] and parley["saturation"]["delivered_per_s"]:
        busy = [r for r in (client_bound(parley), client_bound(echo)) if r]
        idle = [r for r in (server_bound(parley), server_bound(echo)) if r]
        if busy:
            refused["saturation_ratio"] = "; ".join(busy) + ": " + REFUSAL_ADVICE
        elif idle:
            refused["saturation_ratio"] = "; ".join(idle) + ". A throughput ratio compares servers only when both "
            refused["saturation_ratio"] += "ran at a full core; server CPU per delivered message is still reported."
        else:
            ratio = round(parley["saturation"]["delivered_per_s"] / echo["saturation"]["delivered_per_s"], 3)
    for result in (parley, echo):
        if result is not None and (reason := client_bound(result, "steady")):
            notes.append(f"{reason}: the steady relay latencies include the client's own queueing")
        waited = result["steady"].get("server_wait_pct") if result is not None else None
        if result is not None and waited is not None and waited >= WAITED_PCT:
            notes.append(f"{result['server']}'s server waited {waited} % of the steady phase for a core (other work "
                         "on the machine): its relay latencies include that wait")
    checks = {
        "relay_p99_ms": parley["steady"]["relay_ms"]["p99"],
        "saturation_ratio": ratio,
        "server_cpu_ratio": cpu_ratio(parley, echo) if echo is not None else None,
        "rss_per_worker_kb": parley["memory"]["rss_per_worker_kb"],
        "join_to_paired_waiting_p95_ms": parley["join_to_paired_ms"]["partner_waiting"]["p95"],
    }
    met = {
        "relay_p99_ms": checks["relay_p99_ms"] is not None and checks["relay_p99_ms"] <= TARGETS["relay_p99_ms"],
        "saturation_ratio": ratio is not None and ratio >= TARGETS["saturation_ratio"],
        "server_cpu_ratio": checks["server_cpu_ratio"] is not None
        and checks["server_cpu_ratio"] >= TARGETS["server_cpu_ratio"],
        "rss_per_worker_kb": checks["rss_per_worker_kb"] is not None
        and checks["rss_per_worker_kb"] <= TARGETS["rss_per_worker_kb"],
        "join_to_paired_waiting_p95_ms": checks["join_to_paired_waiting_p95_ms"] is not None
        and checks["join_to_paired_waiting_p95_ms"] <= TARGETS["join_to_paired_waiting_p95_ms"],
        "no_errors": parley["error_count"] == 0,
        "no_loss": parley["delivery"]["lost"] == 0 and parley["delivery"]["duplicated"] == 0
        and parley["delivery"]["misrouted"] == 0,
    }
    if echo is None:  # --only parley: no baseline, no ratios to judge
        del met["saturation_ratio"], met["server_cpu_ratio"]
    for key in refused:
        del met[key]
    return {"figures": checks, "targets": TARGETS, "met": met, "refused": refused, "notes": notes}


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

    row("client: kind x processes", lambda r: f"{r['client']} x {r['client_procs']}")
    row("workers paired / finished", lambda r: f"{r['paired']}/{r['workers']} / {r['finished']}")
    row("join->paired p50/p95 ms (all)", lambda r: "{p50} / {p95}".format(**r["join_to_paired_ms"]["all"]))
    row("join->paired p50/p95 ms (partner waiting)",
        lambda r: "{p50} / {p95}".format(**r["join_to_paired_ms"]["partner_waiting"]))
    row("arrival s / server CPU ms per worker / client CPU s",
        lambda r: f"{r['arrival']['seconds']} / {r['arrival']['server_cpu_ms_per_worker']}"
        f" / {r['arrival']['client_cpu_s']}")
    row("steady relay p50/p95/p99/max ms", lambda r: "{p50} / {p95} / {p99} / {max}".format(**r["steady"]["relay_ms"]))
    row("steady relay p99 ms by 10 s window",
        lambda r: " ".join(str(w["p99"]) for w in r["steady"]["relay_ms_by_window"]))
    row("steady delivered msg/s", lambda r: r["steady"]["delivered_per_s"])
    row("steady server / client (busiest) CPU %", lambda r: _cpu_cells(r["steady"]))
    row("saturation delivered msg/s", lambda r: r["saturation"]["delivered_per_s"])
    row("saturation relay p50/p99 ms", lambda r: "{p50} / {p99}".format(**r["saturation"]["relay_ms"]))
    row("saturation server / client (busiest) CPU %", lambda r: _cpu_cells(r["saturation"]))
    row("server CPU us per message steady / saturation",
        lambda r: f"{r['steady']['server_cpu_us_per_message']} / {r['saturation']['server_cpu_us_per_message']}")
    row("client CPU us per message steady / saturation",
        lambda r: f"{r['steady']['client_cpu_us_per_message']} / {r['saturation']['client_cpu_us_per_message']}")
    row("steady / saturation: server, client waiting for a core %",
        lambda r: f"{r['steady']['server_wait_pct']}, {r['steady']['client_wait_pct_max']} / "
        f"{r['saturation']['server_wait_pct']}, {r['saturation']['client_wait_pct_max']}")
    row("client collector pauses steady / saturation: longest, total ms",
        lambda r: f"{r['steady']['client_gc_max_ms']}, {r['steady']['client_gc_ms']} / "
        f"{r['saturation']['client_gc_max_ms']}, {r['saturation']['client_gc_ms']}")
    row("load average end of steady / saturation",
        lambda r: f"{r['steady']['load_avg']} / {r['saturation']['load_avg']}")
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
    lines += ratio_lines(results, verdict_)
    targets = {**TARGETS, **verdict_.get("targets", {})}
    for key, ok in verdict_["met"].items():
        figure = verdict_["figures"].get(key, "")
        target = targets.get(key, "")
        lines.append(f"{'PASS' if ok else 'FAIL'}  {key} {figure if figure is not None else '-'}"
                     + (f" (target {target})" if target != "" else ""))
    for key, reason in verdict_.get("refused", {}).items():
        lines.append(f"REFUSED  {key}: {reason}")
    lines += [f"NOTE  {note}" for note in verdict_.get("notes", [])]
    return "\n".join(lines)


def _cpu_cells(phase: dict[str, Any]) -> str:
    return f"{phase['server_cpu_pct']} / {phase['client_cpu_pct']} ({phase['client_cpu_pct_max']})"


def ratio_lines(results: dict[str, dict[str, Any]], verdict_: dict[str, Any]) -> list[str]:
    """Parley against the relay in saturation: server CPU per delivered message for both (the figure to
    quote is their ratio), then the throughput ratio, or why it is not printed."""
    parley, echo = results.get("parley"), results.get("echo")
    if parley is None or echo is None:
        return []
    mine = parley["saturation"]["server_cpu_us_per_message"]
    bare = echo["saturation"]["server_cpu_us_per_message"]
    lines = [f"server CPU per delivered message in saturation: Parley {mine} us, relay {bare} us; "
             f"relay / Parley = {verdict_['figures'].get('server_cpu_ratio')} (the figure to quote)"]
    if "saturation_ratio" in verdict_.get("refused", {}):
        lines.append("saturation throughput ratio: not printed (see REFUSED below)")
    else:
        lines.append(f"saturation throughput ratio: Parley {parley['saturation']['delivered_per_s']} / relay "
                     f"{echo['saturation']['delivered_per_s']} msg/s = {verdict_['figures'].get('saturation_ratio')}"
                     " (both servers at a full core, every "
                     f"client process under {CLIENT_BUSY_LIMIT_PCT:g} % of one)")
    return [*lines, ""]
