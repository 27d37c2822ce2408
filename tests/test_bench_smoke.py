"""The load benchmark, small: a few dozen simulated workers against a real Parley server and the bare relay.

Asserts what must hold at any size — every worker paired and submitted, no errors, every acked message
delivered to the partner exactly once — never timings (CI machines are noisy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import _median_round, _parser, _ratio_of, load, main


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
