"""The load benchmark, small: a few dozen simulated workers against a real Parley server and the bare relay.

Asserts what must hold at any size — every worker paired and submitted, no errors, every acked message
delivered to the partner exactly once — never timings (CI machines are noisy).
"""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import _parser, load


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
