"""The load benchmark, small: a few dozen simulated workers against a real Parley server and the bare relay.

Asserts what must hold at any size — every worker paired and submitted, no errors, every acked message
delivered to the partner exactly once — never timings (CI machines are noisy).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import inproc, sansio
from bench.__main__ import _median_round, _parser, _ratio_of, load, main
from bench.gcwatch import GcPauses
from bench.report import CLIENT_BUSY_LIMIT_PCT, table, verdict
from bench.worker import loads
from tests.conftest import PG_URL
from tests.support.cluster import missing_cluster_parts, under_ci


async def test_a_small_load_run_pairs_everyone_and_loses_nothing(tmp_path: Path) -> None:
    args = _parser().parse_args([
        "load", "--workers", "24", "--interval", "0.5", "--steady", "2", "--saturate", "2", "--ramp", "40",
        "--out", str(tmp_path),
    ])
    summary = await load(args)
    for name in ("parley", "echo"):
        result = summary["results"][name]
        assert result["client"] == "sansio", name  # the cheap client is the default
        assert result["errors"] == {}, (name, result["errors"])
        assert result["paired"] == result["finished"] == 24, name
        delivery = result["delivery"]
        assert delivery["acked"] > 24, (name, delivery)
        assert delivery["lost"] == delivery["duplicated"] == delivery["misrouted"] == 0, (name, delivery)
        assert delivery["sent_unacked"] == delivery["delivered_unacked"] == 0, (name, delivery)
        assert delivery["delivered"] == delivery["acked"], (name, delivery)
    assert summary["verdict"]["met"]["no_loss"] and summary["verdict"]["met"]["no_errors"]
    for name in ("parley", "echo"):
        for phase in ("steady", "saturation"):
            figures = summary["results"][name][phase]
            # Client CPU is measured in every phase, for each client process; server CPU per message too.
            assert figures["client_cpu_pct_max"] is not None and figures["client_cpu_pct"] is not None, (name, phase)
            assert figures["server_cpu_us_per_message"], (name, phase, figures)
            assert figures["server_wait_pct"] is not None and figures["client_wait_pct_max"] is not None
            # The clients' collector does not run in a measured phase: its pauses would land in the latencies.
            assert figures["client_gc_max_ms"] == figures["client_gc_ms"] == 0.0, (name, phase, figures)
        windows = summary["results"][name]["steady"]["relay_ms_by_window"]
        assert sum(w["messages"] for w in windows) == summary["results"][name]["steady"]["messages"], windows
    assert summary["verdict"]["figures"]["server_cpu_ratio"] is not None


async def test_the_asyncio_client_still_runs_against_the_relay(tmp_path: Path) -> None:
    """`--client asyncio`: websockets' asyncio client, kept to compare the clients' own cost."""
    args = _parser().parse_args([
        "load", "--only", "echo", "--client", "asyncio", "--workers", "12", "--interval", "0.5", "--steady", "1",
        "--saturate", "1", "--ramp", "40", "--out", str(tmp_path),
    ])
    result = (await load(args))["results"]["echo"]
    assert result["client"] == "asyncio"
    assert result["errors"] == {} and result["paired"] == result["finished"] == 12, result["errors"]
    delivery = result["delivery"]
    assert delivery["acked"] > 12 and delivery["delivered"] == delivery["acked"], delivery
    assert delivery["lost"] == delivery["duplicated"] == delivery["misrouted"] == 0, delivery


def _result(name: str, *, per_s: float, server_pct: float = 99.0, client_pct: float = 50.0,
            us_per_message: float | None = None, procs: int = 1) -> dict[str, Any]:
    """A summarized run with made-up figures, as `bench.report.summarize` shapes it."""
    ms = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0}
    phase = {
        "delivered_per_s": per_s, "relay_ms": ms, "server_cpu_pct": server_pct, "client_cpu_pct": client_pct * procs,
        "client_cpu_pct_max": client_pct, "server_cpu_ms_per_message": None, "client_cpu_us_per_message": 30.0,
        "server_cpu_us_per_message": us_per_message if us_per_message is not None else 1e6 * server_pct / 100 / per_s,
        "load_avg": 1.0,
    }
    return {
        "server": name, "client": "sansio", "client_procs": procs, "workers": 2, "paired": 2, "finished": 2,
        "join_to_paired_ms": {"all": ms, "partner_waiting": ms},
        "arrival": {"seconds": 1.0, "server_cpu_ms_per_worker": 1.0, "client_cpu_s": 0.5, "load_avg": 1.0},
        "steady": {**phase, "client_cpu_pct": 5.0, "client_cpu_pct_max": 5.0,
                   "relay_ms_by_window": [{"from_s": 0, "messages": 5, **ms}]},
        "saturation": phase,
        "instances": 1, "cross_instance": {"workers_paired_across": 0, "steady_relay_ms": ms},
        "delivery": {"acked": 10, "delivered": 10, "lost": 0, "duplicated": 0, "misrouted": 0},
        "errors": {}, "error_count": 0,
        "memory": {"idle_rss_mb": 1.0, "connected_rss_mb": 2.0, "peak_rss_mb": 2.0, "rss_per_worker_kb": 30.0},
    }


def test_no_throughput_ratio_when_a_client_was_the_bottleneck() -> None:
    """The relay's client at 99 % of a core set its pace: no ratio is printed, the report says why and what to
    change, and server CPU per delivered message (the figure to quote) is still there for both."""
    parley = _result("parley", per_s=5000, us_per_message=200.0)
    echo = _result("echo", per_s=12400, server_pct=79.0, client_pct=99.7, us_per_message=64.0)
    check = verdict(parley, echo)
    assert check["figures"]["saturation_ratio"] is None
    assert "saturation_ratio" not in check["met"]
    reason = check["refused"]["saturation_ratio"]
    assert "echo's client process used 99.7 % of a core" in reason and "--client-procs" in reason
    assert check["figures"]["server_cpu_ratio"] == 0.32
    printed = table({"parley": parley, "echo": echo}, check)
    assert "REFUSED  saturation_ratio: echo's client process used 99.7 %" in printed
    assert "Parley 200.0 us, relay 64.0 us; relay / Parley = 0.32 (the figure to quote)" in printed
    assert "= 0.403" not in printed and "saturation throughput ratio: not printed" in printed
    assert _ratio_of({"parley": parley, "echo": echo})["ratio"] is None


def test_the_rule_looks_at_the_busiest_client_process_and_at_parley_too() -> None:
    at_limit = _result("echo", per_s=14000, client_pct=CLIENT_BUSY_LIMIT_PCT, us_per_message=70.0)
    parley = _result("parley", per_s=4400, us_per_message=225.0)
    honest = verdict(parley, at_limit)
    assert honest["refused"] == {} and honest["figures"]["saturation_ratio"] == round(4400 / 14000, 3)
    assert honest["met"]["saturation_ratio"] is False and honest["met"]["server_cpu_ratio"] is False
    # Two client processes at 60 % each are 120 % together, but neither is the bottleneck.
    two = _result("echo", per_s=14000, client_pct=60.0, procs=2, us_per_message=70.0)
    assert verdict(parley, two)["refused"] == {}
    busy_parley = _result("parley", per_s=4400, client_pct=90.0, procs=2, us_per_message=225.0)
    reason = verdict(busy_parley, at_limit)["refused"]["saturation_ratio"]
    assert reason.startswith("parley's busiest client process used 90.0 % of a core in the saturation phase")


def test_no_throughput_ratio_when_a_server_was_not_at_a_full_core() -> None:
    """Clients idle enough, but the servers at 70 % of a core (another job on the machine): not a comparison of
    servers either. Server CPU per delivered message still is."""
    parley = _result("parley", per_s=3364, server_pct=73.5, client_pct=21.9, us_per_message=219.0)
    echo = _result("echo", per_s=11144, server_pct=68.9, client_pct=36.4, us_per_message=64.7)
    check = verdict(parley, echo)
    assert check["figures"]["saturation_ratio"] is None
    reason = check["refused"]["saturation_ratio"]
    assert "parley's server used 73.5 % of a core" in reason and "echo's server used 68.9 % of a core" in reason
    assert check["figures"]["server_cpu_ratio"] == 0.295


def _round(parley: float, echo: float) -> dict[str, Any]:
    return {"parley": _result("parley", per_s=parley), "echo": _result("echo", per_s=echo)}


def test_several_rounds_report_the_round_with_the_median_ratio() -> None:
    rounds = [_round(400, 1000), _round(600, 1000), _round(500, 1000)]
    assert _median_round(rounds) is rounds[2]
    assert [_ratio_of(r)["ratio"] for r in rounds] == [0.4, 0.6, 0.5]
    assert [_ratio_of(r)["cpu_ratio"] for r in rounds] == [0.4, 0.6, 0.5]  # both servers at 99 % of a core
    assert _median_round(rounds[:2]) is rounds[0]  # an even count: the lower of the middle two


def test_the_bench_refuses_zero_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["load", "--rounds", "0"])
    assert "--rounds must be 1 or more" in capsys.readouterr().err


async def test_a_small_run_on_three_instances_pairs_across_them_and_loses_nothing(tmp_path: Path) -> None:
    """`--instances 3`: the same workload on one instance, then on three sharing PostgreSQL and Redis, with
    the two workers of each pair joining different instances."""
    missing = [part for part in missing_cluster_parts(PG_URL) if not part.startswith("Caddy")]
    if missing:
        if under_ci():
            pytest.fail("the several-instance bench needs " + "; ".join(missing))
        pytest.skip("the several-instance bench needs " + "; ".join(missing))
    args = _parser().parse_args([
        "load", "--instances", "3", "--postgres", PG_URL, "--workers", "24", "--interval", "0.5", "--steady", "2",
        "--saturate", "2", "--ramp", "40", "--out", str(tmp_path),
    ])
    summary = await load(args)
    assert set(summary["results"]) == {"parley", "parley-x3"}
    for name, result in summary["results"].items():
        assert result["errors"] == {}, (name, result["errors"])
        assert result["paired"] == result["finished"] == 24, name
        delivery = result["delivery"]
        assert delivery["acked"] > 24 and delivery["delivered"] == delivery["acked"], (name, delivery)
        assert delivery["lost"] == delivery["duplicated"] == delivery["misrouted"] == 0, (name, delivery)
    several = summary["results"]["parley-x3"]
    assert several["instances"] == 3
    # Arrivals alternate instances and the waiting room pairs in arrival order: most pairs span two instances.
    assert several["cross_instance"]["workers_paired_across"] >= 12, several["cross_instance"]
    assert several["cross_instance"]["steady_messages"] > 0
    assert summary["verdict"]["met"]["no_loss"] and summary["verdict"]["met"]["no_errors"]
    assert summary["verdict"]["figures"]["cpu_per_message_ratio"] is not None


class _FakeConnection:
    """What SansioWorker needs of its Connection: an open flag and a send that records the frames."""

    def __init__(self) -> None:
        self.open = True
        self.frames: list[dict[str, Any]] = []

    def send(self, data: bytes) -> bool:
        self.frames.append(loads(data))
        return True


async def _until(condition: Callable[[], bool], what: str, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)  # the worker's own timers drive it: nothing else to await


async def test_the_cheap_worker_sends_on_turns_and_stops_with_its_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steady: a send whose time comes before the turn goes out when the turn comes; a phase that ends
    without its turn counts `no_turn`, and its leftover timers send nothing afterwards. Saturation: each turn
    sends the next message at once until the end of the phase; the turn after it is kept (for the goodbye)."""
    monkeypatch.setattr(sansio, "TURN_TIMEOUT_S", 0.2)
    worker = sansio.SansioWorker(base="http://127.0.0.1:1", run_id="bench", worker_id="w1")
    conn = _FakeConnection()
    worker.conn = conn  # type: ignore[assignment]
    start = time.monotonic()
    steady = asyncio.create_task(worker.steady(start, start + 0.15, 0.1, 0.0))  # sends due at +0 and +0.1
    await _until(lambda: worker._owed == 1, "the first send to be owed")
    assert conn.frames == []
    worker._on_frame({"type": "turn"}, time.monotonic())
    assert [f["client_id"] for f in conn.frames] == ["w1.1"]
    await steady  # the second send never gets a turn
    assert worker.errors["no_turn"] == 1
    worker._on_frame({"type": "turn"}, time.monotonic())
    assert worker._has_turn and len(conn.frames) == 1  # outside a phase a turn is kept, not spent

    until = time.monotonic() + 0.1
    saturate = asyncio.create_task(worker.saturate(until))
    await _until(lambda: len(conn.frames) == 2, "the kept turn to be spent at once")
    worker._on_frame({"type": "turn"}, time.monotonic())
    assert len(conn.frames) == 3  # sent from the turn's own callback
    await _until(lambda: time.monotonic() >= until, "the end of the phase")
    worker._on_frame({"type": "turn"}, time.monotonic())
    await saturate
    assert len(conn.frames) == 3 and worker._has_turn and worker.errors["no_turn"] == 1
    assert all(f["data"]["w"] == "w1" and f["data"]["c"] == f["client_id"] for f in conn.frames)


async def test_a_steady_phase_cut_short_leaves_no_timer_sending() -> None:
    worker = sansio.SansioWorker(base="http://127.0.0.1:1", run_id="bench", worker_id="w2")
    conn = _FakeConnection()
    worker.conn = conn  # type: ignore[assignment]
    start = time.monotonic()
    steady = asyncio.create_task(worker.steady(start, start + 0.3, 0.1, 0.0))  # due at +0, +0.1, +0.2
    await _until(lambda: worker._owed == 1, "the first send to be owed")
    worker._on_lost(1006)  # the socket went away: the phase ends now
    await steady
    assert worker.errors["socket_closed:1006"] == 1
    worker._has_turn = True  # were a leftover timer to fire, it would send
    await _until(lambda: time.monotonic() > start + 0.35, "the phase's remaining send times to pass")
    assert conn.frames == []


async def test_the_in_process_bench_measures_the_chat_line_path(tmp_path: Path) -> None:
    """`python -m bench.inproc`: a run of the bench task with fake pages, lines flowing, CPU per line."""
    per_line = await inproc.measure(8, 0.5, 2, f"sqlite+aiosqlite:///{tmp_path / 'inproc.db'}")
    assert len(per_line) == 2 and all(us > 0 for us in per_line), per_line


def test_the_collector_watch_records_a_pause_by_generation() -> None:
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        gc.collect(1)
    finally:
        gc.callbacks.remove(pauses)
    assert len(pauses.pauses[1]) == 1 and not pauses.pauses[2]
    figures = pauses.figures()
    assert figures["gc_count"] == 1 and figures["gc_max_ms"] == round(pauses.pauses[1][0], 1)
