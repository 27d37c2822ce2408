"""`python -m bench [load] [options]` runs the load benchmark; `python -m bench publish` times publishing HITs.

`python -m bench --instances 3 --postgres` runs the same workload on one Parley instance and then on three
(one PostgreSQL, one Redis), each worker joining the instances in turn so that partners sit on different
instances, and compares them: relay between instances, delivered messages per second, CPU per message.

Results: a JSON summary and the server logs under bench/results/ (git-ignored), a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.report import cpu_ratio, scale_verdict, summarize, table, verdict
from bench.run import BenchError, LoadOptions, echo_spec, parley_spec, run_load
from bench.worker import dumps

RESULTS = Path(__file__).resolve().parent / "results"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("load", help="Parley and the bare relay under the same simulated workers (default)")
    load.add_argument("--workers", type=int, default=2000, help="simulated workers (two per conversation)")
    load.add_argument("--interval", type=float, default=5.0, help="seconds between a worker's messages (steady)")
    load.add_argument("--steady", type=float, default=30.0, help="length of the steady phase, seconds")
    load.add_argument("--saturate", type=float, default=15.0, help="length of the saturation phase, seconds")
    load.add_argument("--ramp", type=float, default=200.0, help="joins per second while workers arrive")
    load.add_argument("--client-gc", action="store_true",
                      help="let the collector run in the client processes during measured phases (see docs)")
    load.add_argument("--client-procs", type=int, default=1, help="client processes (default 1: see docs)")
    load.add_argument("--client", choices=["sansio", "asyncio"], default="sansio",
                      help="the workers' websocket client: websockets' sans-I/O protocol on asyncio transports "
                      "(cheap, the default) or websockets' asyncio client (about twice the CPU per message)")
    load.add_argument("--postgres", nargs="?", const="postgresql+asyncpg://postgres@127.0.0.1:5432/bench",
                      default="", help="use PostgreSQL (emptied first!) instead of a fresh SQLite file")
    load.add_argument("--ws", default="websockets-sansio", help="uvicorn --ws for both servers")
    load.add_argument("--loop", default="uvloop", help="uvicorn --loop for both servers")
    load.add_argument("--deflate", action="store_true",
                      help="turn permessage-deflate on for both servers (off by default, as Parley ships)")
    load.add_argument("--only", choices=["parley", "echo"], help="run one server only (no ratio)")
    load.add_argument("--rounds", type=int, default=1,
                      help="run both servers this many times, alternating which goes first; report the median")
    load.add_argument("--profile", action="store_true", help="py-spy the Parley server (steady + saturation)")
    load.add_argument("--env", action="append", default=[], metavar="PARLEY_X=V", help="extra server env")
    load.add_argument("--instances", type=int, default=1,
                      help="also run this many Parley instances (needs --postgres and Redis) against one")
    load.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis for --instances")
    load.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON summary and logs")
    pub = sub.add_parser("publish", help="time publishing HITs to the built-in sandbox")
    pub.add_argument("--hits", type=int, default=1000)
    pub.add_argument("--out", type=Path, default=RESULTS)
    return parser


async def load(args: argparse.Namespace) -> dict[str, Any]:
    opts = LoadOptions(
        workers=args.workers, interval_s=args.interval, steady_s=args.steady, saturate_s=args.saturate,
        ramp_per_s=args.ramp, client_procs=args.client_procs, client=args.client,
        client_gc=args.client_gc,
        database_url=args.postgres or "", ws=args.ws, loop=args.loop, per_message_deflate=args.deflate,
        profile=args.profile,
        extra_env=dict(item.split("=", 1) for item in args.env), instances=args.instances, redis_url=args.redis,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    tag = time.strftime("%Y%m%d-%H%M%S")
    load_before = _load_avg()
    if opts.instances > 1:
        _check_redis(opts.redis_url)
        names = ["parley", f"parley-x{opts.instances}"]
    else:
        names = [name for name in ("parley", "echo") if not args.only or args.only == name]
    rounds: list[dict[str, dict[str, Any]]] = []
    for k in range(args.rounds):
        # Alternate which server goes first, so a machine that speeds up or slows down favours neither.
        order = names if k % 2 == 0 else names[::-1]
        rounds.append(await _round(opts, order, args.out, f"{tag}-r{k + 1}" if args.rounds > 1 else tag))
    results = _median_round(rounds)
    parley = results.get("parley")
    several = results.get(f"parley-x{opts.instances}")
    if parley is not None and several is not None:
        check = scale_verdict(parley, several)
    else:
        check = verdict(parley, results.get("echo")) if parley is not None else {"met": {}, "figures": {}}
    summary = {
        "when": tag, "options": asdict(opts), "backend": "postgresql" if opts.database_url else "sqlite",
        "machine": _machine(), "load_avg_before": load_before, "load_avg_after": _load_avg(),
        "results": results, "verdict": check, "rounds": [_ratio_of(r) for r in rounds],
    }
    path = args.out / f"{tag}-load-{summary['backend']}.json"
    path.write_text(dumps(summary))
    _out(table(results, check) if parley is not None else dumps(results))
    if len(rounds) > 1 and "echo" in results:
        ratios = ", ".join(f"{r['cpu_ratio']} ({r['ratio'] if r['ratio'] is not None else 'refused'})"
                           for r in summary["rounds"])
        _out(f"[bench] server CPU per message ratio (throughput ratio) by round: {ratios}; "
             "the table shows the round with the median CPU ratio")
    _out(f"[bench] summary: {path}")
    return summary


async def _round(opts: LoadOptions, order: list[str], out: Path, tag: str) -> dict[str, dict[str, Any]]:
    """Each server in `order` under the same client load, Parley on a fresh database."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as data_dir:
        specs = {"parley": parley_spec(opts, Path(data_dir)), "echo": echo_spec(opts)}
        if opts.instances > 1:
            several = parley_spec(opts, Path(data_dir), instances=opts.instances)
            specs[several.name] = several
        for name in order:
            if opts.database_url and name.startswith("parley"):
                await _empty_database(opts.database_url)  # each Parley target starts from an empty database
            _out(f"[bench] {name}: {opts.workers} workers ...")
            raw = await run_load(specs[name], opts, out, tag)
            results[name] = summarize(raw, asdict(opts))
    return results


def _ratio_of(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One round's Parley against the relay: throughputs, the throughput ratio (None when a client was the
    bottleneck: `refused` says why), server CPU per delivered message and its ratio (the figure to quote)."""
    parley, echo = results.get("parley"), results.get("echo")
    if parley is None or echo is None:
        return {"ratio": None, "cpu_ratio": None, "refused": None}
    check = verdict(parley, echo)
    return {
        "parley_per_s": parley["saturation"]["delivered_per_s"], "echo_per_s": echo["saturation"]["delivered_per_s"],
        "ratio": check["figures"]["saturation_ratio"], "refused": check["refused"].get("saturation_ratio"),
        "parley_us_per_message": parley["saturation"].get("server_cpu_us_per_message"),
        "echo_us_per_message": echo["saturation"].get("server_cpu_us_per_message"),
        "cpu_ratio": cpu_ratio(parley, echo),
    }


def _median_round(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The round whose server CPU per message ratio is the median (the lower of the middle two for an even
    count)."""
    ranked = sorted(rounds, key=lambda r: _ratio_of(r)["cpu_ratio"] or 0.0)
    return ranked[(len(ranked) - 1) // 2]


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as error:
        raise BenchError(
            f"--instances needs Redis at {url} ({error}). Start one: redis-server --daemonize yes --port 6379 "
            '--save "" --appendonly no, or give another with --redis.'
        ) from None


async def _empty_database(url: str) -> None:
    from server.store import Store

    await _create_database(url)
    store = Store(url)
    try:
        await store.drop_all()
    finally:
        await store.close()


async def _create_database(url: str) -> None:
    """The bench's PostgreSQL database, made on first use (a fresh machine has only `postgres`)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    server = target.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(server)
    except (OSError, asyncpg.PostgresError) as error:
        raise BenchError(
            f"--postgres: cannot reach PostgreSQL at {server} ({error}); start it, or give another URL."
        ) from None
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database):
            await conn.execute(f'CREATE DATABASE "{target.database}"')
    finally:
        await conn.close()


def _load_avg() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages: other work on the same cores shows here."""
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _machine() -> dict[str, Any]:
    import os
    import platform

    import psutil

    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv = ["load", *argv]
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "load" and args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if args.command == "load" and args.instances < 1:
        parser.error("--instances must be 1 or more")
    if args.command == "load" and args.instances > 1 and not args.postgres:
        parser.error("--instances needs --postgres: several instances share one PostgreSQL database")
    if args.command == "load" and args.instances > 1 and args.only:
        parser.error("--instances compares one instance with several: it takes no --only")
    if args.command == "publish":
        from bench.publish import publish

        asyncio.run(publish(args))
        return 0
    try:
        summary = asyncio.run(load(args))
    except BenchError as failed:
        _out(f"[bench] failed: {failed}")
        return 2
    return 0 if summary["verdict"]["met"].get("no_loss", True) else 1


if __name__ == "__main__":
    sys.exit(main())
