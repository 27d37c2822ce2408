"""The load benchmark, small: a few dozen simulated workers against a real Parley server and the bare relay.

Asserts what must hold at any size — every worker paired and submitted, no errors, every acked message
delivered to the partner exactly once — never timings (CI machines are noisy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import _median_round, _parser, _ratio_of, load, main
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
        assert result["errors"] == {}, (name, result["errors"])
        assert result["paired"] == result["finished"] == 24, name
        delivery = result["delivery"]
        assert delivery["acked"] > 24, (name, delivery)
        assert delivery["lost"] == delivery["duplicated"] == delivery["misrouted"] == 0, (name, delivery)
        assert delivery["sent_unacked"] == delivery["delivered_unacked"] == 0, (name, delivery)
        assert delivery["delivered"] == delivery["acked"], (name, delivery)
    assert summary["verdict"]["met"]["no_loss"] and summary["verdict"]["met"]["no_errors"]


def _round(parley: float, echo: float) -> dict[str, Any]:
    return {name: {"saturation": {"delivered_per_s": rate}} for name, rate in (("parley", parley), ("echo", echo))}


def test_several_rounds_report_the_round_with_the_median_ratio() -> None:
    rounds = [_round(400, 1000), _round(600, 1000), _round(500, 1000)]
    assert _median_round(rounds) is rounds[2]
    assert [_ratio_of(r)["ratio"] for r in rounds] == [0.4, 0.6, 0.5]
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
