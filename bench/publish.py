"""`python -m bench publish`: time publishing N HITs through the HIT manager's Publisher to the built-in
sandbox, the real way (boto3 over HTTP, AWS JSON 1.1), with the sandbox in its own uvicorn process.

What is timed: `Publisher.publish(plan, task, N)` — reserving each slot in the store (budget check, its
UniqueRequestToken), then `CreateHITWithHITType` and the record update, one HIT after another.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bench.servers import ServerProcess, ServerSpec
from bench.worker import dumps

TARGET_S = 20.0


def sandbox_app() -> FastAPI:
    """The sandbox alone (uvicorn --factory), keeping its state where BENCH_SANDBOX_STATE says."""
    from server.sandbox import build_sandbox

    sandbox = build_sandbox(state_path=Path(os.environ["BENCH_SANDBOX_STATE"]))
    app = FastAPI()
    app.include_router(sandbox.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def publish(args: argparse.Namespace) -> dict[str, Any]:
    from server.hits.publisher import Publisher
    from server.hits.quals import Qualifications
    from server.providers.mturk import MTurk
    from server.store import Store
    from server.store.hits import HitPlan, HitStore
    from server.tasks import load_task

    args.out.mkdir(parents=True, exist_ok=True)
    tag = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="parley-bench-publish-") as tmp:
        spec = ServerSpec("sandbox", "bench.publish:sandbox_app", {"BENCH_SANDBOX_STATE": f"{tmp}/sandbox.json"})
        server = ServerProcess(spec, args.out / f"{tag}-sandbox-server.log", factory=True)
        await server.start()
        store = Store(f"sqlite+aiosqlite:///{tmp}/parley.db")
        await store.open()
        try:
            mturk = MTurk.connect(server.base + "/sandbox/mturk", builtin=True)
            hit_store = HitStore(store)
            publisher = Publisher(mturk, hit_store, Qualifications(mturk, hit_store), "http://127.0.0.1:8000")
            task = load_task("bench.tasks:chat")
            await store.ensure_run("bench", task_module="bench.tasks:chat", options={})
            plan = await hit_store.save_plan(HitPlan(run_id="bench", account=mturk.account, reward_cents=5))
            started = time.perf_counter()
            await publisher.hit_type(plan, task)
            hit_type_s = time.perf_counter() - started
            records = await publisher.publish(plan, task, args.hits)
            elapsed = time.perf_counter() - started
            cpu_s = server.cpu_s()
        finally:
            await store.close()
            await server.stop()
    summary = {
        "when": tag, "hits": args.hits, "published": sum(1 for r in records if r.status == "open"),
        "seconds": round(elapsed, 2), "hit_type_seconds": round(hit_type_s, 3),
        "per_hit_ms": round(1000 * elapsed / max(1, args.hits), 2), "sandbox_cpu_s": round(cpu_s, 2),
        "target_s": TARGET_S, "met": elapsed <= TARGET_S and len(records) == args.hits,
    }
    path = args.out / f"{tag}-publish.json"
    path.write_text(dumps(summary))
    sys.stdout.write(
        f"published {summary['published']}/{args.hits} HITs in {summary['seconds']} s "
        f"({summary['per_hit_ms']} ms each; sandbox CPU {summary['sandbox_cpu_s']} s) -> "
        f"{'PASS' if summary['met'] else 'FAIL'} (target {TARGET_S} s)\n[bench] summary: {path}\n"
    )
    return summary
