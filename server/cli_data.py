"""`parley export` and `parley agreement`: a run's data out of the database (registered on `server.cli_app.app`)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from typing import Annotated, Any

import typer
from rich.table import Table

from server.cli_app import Target, _run, app, console
from server.export import FORMATS, export_run
from server.hits import HitManager
from server.hits.forms import AGREEMENT_STATUSES, agreement_of, html_form_of
from server.states import AssignmentStatus, HitStatus
from server.store.hits import HIT_LIVE, FormAnswer, HitStore
from server.tasks import load_task


@app.command()
def export(
    ctx: typer.Context,
    run_id: str,
    fmt: Annotated[str, typer.Option("--format", help="jsonl | parlai | csv")] = "jsonl",
    out: Annotated[str, typer.Option("--out", help="file to write (default: standard output)")] = "-",
    raw_worker_ids: Annotated[bool, typer.Option("--raw-worker-ids", help="keep MTurk worker ids unhashed")] = False,
) -> None:
    """Stream a run's conversations, messages, annotations, saved data and review status."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")

    with open(out, "w", encoding="utf-8", newline="") if out != "-" else contextlib.nullcontext(sys.stdout) as sink:

        async def work(target: Target, manager: HitManager) -> int:
            written = 0
            async for chunk in export_run(manager.store, run_id, fmt, raw_worker_ids=raw_worker_ids):
                sink.write(chunk)
                written += 1
            return written

        chunks = _run(ctx, work)
    if out != "-":
        console.print(f"Wrote {chunks} {fmt} chunks of run {run_id} to {out}")


async def _answers_summary(hit_store: HitStore, run_id: str, answers: list[FormAnswer]) -> str:
    """How many answers are in, how many await review, and how many are still pending: assignments of the run's
    HITs that may still be worked (being made, open, taken, or closed with their answers not yet read)."""
    kept = Counter(a.hit_id for a in answers)
    pending = sum(max(0, r.max_assignments - kept.get(r.hit_id or "", 0))
                  for r in await hit_store.hits(run_id, statuses=(*HIT_LIVE, HitStatus.CLOSED)))
    waiting = sum(1 for a in answers if a.assignment_status == AssignmentStatus.SUBMITTED)
    return (f"Run {run_id}: {len(answers)} answer(s) in ({waiting} awaiting review), {pending} still pending on "
            "HITs that may yet be worked; agreement below counts the answers in, except rejected ones.")


@app.command()
def agreement(
    ctx: typer.Context,
    run_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Agreement of a form run's workers, per field and per item (percent agreement, Fleiss' kappa).

    Counts every kept answer except rejected ones and unreadable ones.
    """

    async def work(target: Target, manager: HitManager) -> tuple[list[dict[str, Any]], str]:
        row = await manager.store.get_run(run_id)
        if row is None:
            raise ValueError(f"there is no run {run_id}; `parley status` lists the runs")
        form = html_form_of(load_task(row.task_module, row.options))
        if form is None:
            raise ValueError(f"run {run_id} ({row.task_module}) is not a form task: it has no per-item answers")
        answers = await manager.hit_store.form_answers(run_id)
        counted = [a for a in answers if a.assignment_status in AGREEMENT_STATUSES]
        return agreement_of(form, counted), await _answers_summary(manager.hit_store, run_id, answers)

    report, summary = _run(ctx, work)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    console.print(summary)
    for figures in report:
        kappa = figures["fleiss_kappa"]
        console.print(f"[bold]{figures['field']}[/bold]: {figures['items']} item(s) with 2+ answers, "
                      f"{figures['answers']} answers, percent agreement {figures['percent_agreement']:.3f}, "
                      f"Fleiss' kappa {'n/a (one label only)' if kappa is None else f'{kappa:.3f}'}")
        table = Table("item", "agreement", "majority")
        for item, label in sorted(figures["majority"].items()):
            share = figures["item_agreement"].get(item)
            table.add_row(item, "-" if share is None else f"{share:.3f}", label)
        console.print(table)
