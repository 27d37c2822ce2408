"""`parley run`'s flags read into one checked RunFlags, and the plan the command prints before it writes or
publishes anything (every setting the flags may change)."""

from __future__ import annotations

import typer

from server import run_flags as flag_rules
from server.cli_app import console
from server.hits.admin import describe_qualifications
from server.run_flags import FlagError, RunFlags
from server.store.hits import HTML
from worlds.base import Task, worker_ids

PROVIDERS = {"builtin": "the built-in MTurk sandbox", "sandbox": "MTurk's sandbox", "live": "LIVE MTurk"}


def read_flags(
    *, hits: int | None, assignments: int | None, reward: str, conversations: int | None, lifetime: str,
    assignment_duration: str, max_conversations: int | None, per_worker: int | None, locale: list[str] | None,
    min_approval_rate: int | None, min_approved_hits: int | None, masters: bool, allow_list: str, block_list: str,
    qualification: list[str] | None,
) -> RunFlags:
    """The flags as one checked RunFlags; a bad value ends the command before anything is written."""
    try:
        flags = RunFlags(
            hits=hits, assignments=assignments, reward=flag_rules.reward(reward) if reward else None,
            conversations=conversations,
            lifetime_s=flag_rules.seconds(lifetime, "--lifetime") if lifetime else None,
            assignment_duration_s=flag_rules.seconds(assignment_duration, "--assignment-duration")
            if assignment_duration else None,
            max_conversations=max_conversations, per_worker=per_worker,
            locales=flag_rules.locales(locale) if locale else None, min_approval_rate=min_approval_rate,
            min_approved_hits=min_approved_hits, masters=masters,
            allow_list=_worker_file(allow_list, "--allow-list"), block_list=_worker_file(block_list, "--block-list"),
            custom=tuple(flag_rules.requirement(q) for q in qualification or ()),
        )
        flags.check()
    except ValueError as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    return flags


def _worker_file(path: str, flag: str) -> tuple[str, ...]:
    if not path:
        return ()
    try:
        ids = worker_ids(path)
    except OSError as exc:
        raise FlagError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None
    if not ids:
        raise FlagError(f"{flag} {path}: no worker ids in it (one a line)")
    return ids


def announce_plan(
    run_id: str, task: Task, flags: RunFlags, *, provider: str, budget: float, question: tuple[str, int],
    default_lifetime_s: int,
) -> None:
    """What the run will publish, every setting the flags may change, before anything is written."""
    kind, per_hit = question
    how_many = f"{flags.hits}" if flags.hits else "as many as needed,"
    what = (f"{how_many} HTMLQuestion HIT(s), one per item, {per_hit} assignment(s) each" if kind == HTML
            else f"{how_many} ExternalQuestion HIT(s) of its task page, 1 assignment each")
    caps = task.caps
    lines = [
        f"Run [bold]{run_id}[/bold] ({task.name}) publishes {what} on {PROVIDERS[provider]}:",
        f"  reward ${task.reward:.2f} per assignment (+ MTurk's fee); budget "
        f"{f'${budget:.2f}' if budget else 'no cap'}",
        f"  HIT lifetime {_duration(task.hit_lifetime_s or default_lifetime_s)} (renewed while served); "
        f"{_duration(task.assignment_duration_s)} to submit once accepted",
        f"  target {caps.target_conversations} conversation(s), at most {caps.max_conversations} at once, "
        f"at most {caps.per_worker_total} per worker",
        f"  qualifications: {describe_qualifications(task.qualifications, live=provider == 'live')}",
    ]
    console.print("\n".join(lines))


def _duration(s: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"
