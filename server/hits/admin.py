"""Requester operations that need no running server: set up a run's publishing, expire a run, clean up.

The CLI calls these with its own MTurk client and Store; the server's HIT manager then carries on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.hits import plan as rules
from server.hits.compensation import ANNOTATION as COMPENSATION
from server.hits.forms import html_form_of
from server.hits.publisher import Publisher, status_of
from server.run_flags import check_task
from server.states import HitStatus
from server.store.hits import EXTERNAL, HTML, HitPlan, HitStore
from worlds.base import Qualifications, Task


class LiveModeRefused(ValueError):
    """Live MTurk needs a budget cap and an HTTPS public URL; Parley refuses to publish without them."""


HTTPS_HELP = ("MTurk frames only https:// pages: set PARLEY_PUBLIC_URL to an https:// address that reaches this "
              "server (docs/deploy.md: Caddy in front of Parley, or an HTTPS tunnel for a quick try)")


def check_live(*, live: bool, budget_usd: float, public_url: str) -> None:
    if not live:
        return
    if budget_usd <= 0:
        raise LiveModeRefused("publishing on live MTurk needs a budget cap (--budget): real money is spent")
    check_public_url("live", public_url)


def check_public_url(provider: str, public_url: str) -> None:
    """MTurk's sandbox and live MTurk show the task page only from an https:// address."""
    if provider in ("sandbox", "live") and not public_url.startswith("https://"):
        where = "live MTurk" if provider == "live" else "MTurk's sandbox"
        raise LiveModeRefused(f"publishing on {where} needs an https:// PUBLIC_URL (got {public_url!r}). {HTTPS_HELP}")


def describe_qualifications(declared: Qualifications, *, live: bool) -> str:
    """The requirements a run's HITs carry, in words (Parley's own gates left out)."""
    locales = declared.locales if declared.locales is not None else (rules.DEFAULT_LOCALES if live else ())
    rate = declared.min_approval_rate if declared.min_approval_rate is not None else (
        rules.DEFAULT_APPROVAL_RATE if live else 0)
    said = []
    if locales:
        said.append(f"locale in {', '.join(locales)}")
    if rate:
        said.append(f"approval rate >= {rate}%")
    if declared.min_approved_hits:
        said.append(f">= {declared.min_approved_hits} approved HITs")
    if declared.masters:
        said.append("Masters")
    if declared.allow_list:
        said.append(f"only the {len(declared.allow_list)} worker(s) of the allow list")
    if declared.block_list:
        said.append(f"not the {len(declared.block_list)} worker(s) of the block list")
    said += [f"{c['QualificationTypeId']} {c['Comparator']} {c.get('IntegerValues') or c.get('LocaleValues') or ''}"
             .rstrip() for c in declared.custom]
    return "; ".join(said) or "none (anyone may work)"


def publishing_choice(task: Task, question: str = "", assignments: int = 0) -> tuple[str, int]:
    """(question kind, assignments per HIT) for a task, or ValueError saying what to change."""
    form = html_form_of(task)
    question = question or (HTML if form is not None else EXTERNAL)
    if question not in (HTML, EXTERNAL):
        raise ValueError(f"--question must be {HTML} or {EXTERNAL}, not {question!r}")
    if question == HTML and form is None:
        raise ValueError(f"task {task.name} has no html_form, so it is published only as an ExternalQuestion: "
                         f"leave out --question {HTML}")
    if assignments < 0:
        raise ValueError(f"--assignments {assignments}: MTurk needs at least one assignment per HIT")
    if question == EXTERNAL and assignments not in (0, 1):
        raise ValueError(
            f"--assignments {assignments}: an ExternalQuestion run publishes one assignment per HIT (each worker "
            f"its own HIT, paired live by Parley); ask for more HITs with --hits instead, or --assignments 1"
        )
    per_hit = 1 if question == EXTERNAL else (assignments or (form.assignments if form else 1))
    if not 1 <= per_hit <= rules.MAX_FORM_ASSIGNMENTS:
        raise ValueError(
            f"assignments per item must be 1..{rules.MAX_FORM_ASSIGNMENTS} (got {per_hit}): MTurk charges 40% "
            "instead of 20% on HITs of 10 or more assignments"
        )
    return question, per_hit


async def publish_run(
    hit_store: HitStore, *, run_id: str, account: str, task: Task, budget_usd: float, live: bool, public_url: str,
    overbook: float = 1.25, lifetime_s: int = 4 * 3600, auto_approval_delay_s: int = 3 * 24 * 3600,
    question: str = "", assignments: int = 0, max_hits: int = 0,
) -> HitPlan:
    """Mark a run for publishing on an account within a budget; the HIT manager publishes its HITs.

    `question`: `html` (one HTMLQuestion HIT per item, `assignments` workers each; the task must carry an
    `html_form`), `external` (Parley's task page, one worker per HIT), or "" for `html` when the task has a
    form. `assignments` 0 takes the form's own. A run keeps the question it was first published with.
    `lifetime_s` is the HITs' lifetime unless the task declares its own (`hit_lifetime_s`); `max_hits` (0:
    no limit) is how many HITs the run may ever publish. The reward, assignment duration and
    qualifications are the task's (with `parley run`'s flags already applied).
    """
    check_live(live=live, budget_usd=budget_usd, public_url=public_url)
    check_task(task)
    question, per_hit = publishing_choice(task, question, assignments)
    existing = await hit_store.plan(run_id)
    if existing is not None and existing.account != account:
        raise ValueError(f"run {run_id} publishes on {existing.account}, not {account}: use a new run id")
    if existing is not None and (existing.question, existing.assignments) != (question, per_hit):
        raise ValueError(
            f"run {run_id} publishes {existing.question} questions with {existing.assignments} assignment(s) "
            f"each, not {question} with {per_hit}: use a new run id"
        )
    return await hit_store.save_plan(HitPlan(
        run_id=run_id, account=account, publishing=True, budget_cents=rules.cents(budget_usd),
        reward_cents=rules.cents(task.reward), overbook=overbook, lifetime_s=task.hit_lifetime_s or lifetime_s,
        assignment_duration_s=task.assignment_duration_s, auto_approval_delay_s=auto_approval_delay_s,
        question=question, assignments=per_hit, max_hits=max_hits,
    ))


@dataclass(frozen=True)
class OpenHit:
    hit_id: str
    run_id: str
    title: str
    reward: str
    expires: float


async def open_hits(publisher: Publisher) -> list[OpenHit]:
    """Every HIT on the account that a worker can still accept."""
    found = []
    async for hit in publisher.mturk.pages("ListHITs", "HITs"):
        if status_of(hit) == HitStatus.OPEN:
            found.append(OpenHit(
                hit_id=hit["HITId"], run_id=str(hit.get("RequesterAnnotation") or ""), title=hit.get("Title", ""),
                reward=str(hit.get("Reward", "")), expires=float(hit["Expiration"].timestamp())
                if hasattr(hit.get("Expiration"), "timestamp") else 0.0,
            ))
    return found


async def orphans(publisher: Publisher, hit_store: HitStore) -> list[OpenHit]:
    """Open HITs no publishing run of this database wants: from stopped runs, other databases, crashes.
    Compensation HITs are left alone: each waits for its one worker."""
    wanted = {p.run_id for p in await hit_store.plans(publisher.mturk.account) if p.publishing}
    return [hit for hit in await open_hits(publisher)
            if hit.run_id not in wanted and not hit.run_id.startswith(COMPENSATION)]  # compensations wait for a worker


async def expire_hits(
    publisher: Publisher, hit_ids: list[str], progress: Callable[[str], Any] = lambda _: None
) -> int:
    for hit_id in hit_ids:
        record = await publisher.hit_store.hit_by_id(hit_id)
        await publisher.mturk.call("UpdateExpirationForHIT", HITId=hit_id, ExpireAt=0)
        if record is not None and record.status == HitStatus.OPEN:
            await publisher.hit_store.set_hit(record.token, status=HitStatus.CLOSED)
        progress(hit_id)
    return len(hit_ids)


async def stop_run(publisher: Publisher, hit_store: HitStore, run_id: str) -> list[str]:
    """Stop publishing a run; returns the ids of its HITs still open (to expire)."""
    if await hit_store.plan(run_id) is not None:
        await hit_store.update_plan(run_id, publishing=False)
    return [hit.hit_id for hit in await open_hits(publisher) if hit.run_id == run_id]
