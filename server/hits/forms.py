"""Form runs: a task published as HTMLQuestions, one HIT per item, `assignments` workers answering each.

A task offers this by carrying an `html_form` (e.g. `worlds.static_form`), which Parley uses only through
the `HtmlForm` protocol below. Each pass of the HIT manager over a form run:

1. `creating` records are created again: the item's UniqueRequestToken makes MTurk create a HIT at most
   once, and a repeat names the HIT it made, so a crash between reserving and creating loses nothing and
   publishes nothing twice;
2. records follow the ListHITs sweep (a HIT no record names is adopted; its answers name their item);
3. HITs with more work on MTurk than answers kept have their assignments read: one `mturk_form_answer`
   row per assignment, written once (a re-read only moves its review status);
4. closed HITs are settled: no work -> `expired` (charge released, HIT deleted), else `submitted` /
   `reviewed` with the charge cut down to the assignments actually worked; a worker who has answered
   the task's `caps.per_worker_total` items no longer sees the run's HITs;
5. items without a HIT are published (budget cap and MAX_OPEN_HITS respected), among them items whose
   HIT closed with nobody having worked it; or, when the run is stopped, open HITs are expired.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.exc import IntegrityError

from server.hits import plan as rules
from server.hits.publisher import Publisher, epoch
from server.hits.quals import at_cap_name
from server.hits.sync import expire_unworked
from server.providers.mturk import MTurkError
from server.states import AssignmentStatus, HitStatus
from server.store import Store, TaskRun
from server.store.hits import (
    HIT_FREE,
    HTML,
    BudgetExceeded,
    FormAnswer,
    HitLimitReached,
    HitPlan,
    HitRecord,
    HitStore,
)
from server.tasks import TaskLoadError, load_task
from worlds.base import Task

log = logging.getLogger(__name__)


@runtime_checkable
class HtmlForm(Protocol):
    """What a task's `html_form` offers the HIT manager."""

    assignments: int

    @property
    def fields(self) -> list[str]: ...

    def items(self) -> list[dict[str, Any]]: ...

    def item_id(self, item: Mapping[str, Any]) -> str: ...

    def question(self, item: Mapping[str, Any]) -> str: ...

    def record(self, assignment: Mapping[str, Any], item_id: str | None = None) -> dict[str, Any]: ...

    def agreement(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]: ...


def html_form_of(task: Task) -> HtmlForm | None:
    form = getattr(task, "html_form", None)
    return form if isinstance(form, HtmlForm) else None


def answer_record(answer: FormAnswer) -> dict[str, Any]:
    """A kept answer as the record the task's agreement reads."""
    return {"item_id": answer.item_id, "worker_id": answer.worker_id, "assignment_id": answer.assignment_id,
            "hit_id": answer.hit_id, "answers": answer.answers}


AGREEMENT_STATUSES = (AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED)  # rejected work is left out of agreement


def agreement_of(form: HtmlForm, answers: Iterable[FormAnswer]) -> list[dict[str, Any]]:
    """The task's agreement figures over every kept answer except rejected and unreadable ones."""
    return form.agreement(
        [answer_record(a) for a in answers if a.assignment_status in AGREEMENT_STATUSES and not a.error]
    )


def task_of_row(row: TaskRun) -> Task | None:
    """A run's task loaded from its row (a run this process does not serve); None, logged, if it cannot be."""
    try:
        return load_task(row.task_module, row.options)
    except (TaskLoadError, ValueError) as exc:
        log.error("run %s: cannot load its task (form answers, agreement): %s", row.id, exc)
        return None


class FormRuns:
    def __init__(self, publisher: Publisher, hit_store: HitStore, store: Store) -> None:
        self.publisher = publisher
        self.hit_store = hit_store
        self.store = store
        self.mturk = publisher.mturk
        self._tasks: dict[str, Task | None] = {}
        self._over_budget: set[str] = set()

    async def task_of(self, run_id: str) -> Task | None:
        """The task of a run this process does not serve (e.g. stopped), loaded once from its row."""
        if run_id not in self._tasks:
            row = await self.store.get_run(run_id)
            self._tasks[run_id] = task_of_row(row) if row else None
        return self._tasks[run_id]

    async def tend(self, plan: HitPlan, task: Task | None, hits: list[dict[str, Any]], *, publishing: bool) -> None:
        form = html_form_of(task) if task is not None else None
        if form is None or task is None:
            log.error("run %s publishes HTMLQuestions but its task has no html_form; nothing done", plan.run_id)
            return
        if not await self._retry_creating(plan, task, form):
            return  # MTurk did not answer for a HIT being made: listing now could adopt it twice
        records = await self.publisher.refresh(plan, hits)
        await self._collect(plan, form, records, {h["HITId"]: h for h in hits})
        answers = await self.hit_store.form_answers(plan.run_id)
        await self._settle(plan, form, await self.hit_store.hits(plan.run_id), answers)
        await self._cap_workers(plan, task, answers)
        if publishing:
            await self.publish(plan, task, form)
        else:
            for record in await self.hit_store.hits(plan.run_id, statuses=(HitStatus.OPEN,)):
                await self.publisher.expire(record)

    # ---- publishing ---------------------------------------------------------------------------

    async def publish(self, plan: HitPlan, task: Task, form: HtmlForm) -> list[HitRecord]:
        """One HIT per item that has none yet, within the budget and MAX_OPEN_HITS. Safe to repeat.

        An item whose HITs all cost nothing (MTurk refused one, or it closed with nobody having worked it:
        its lifetime ran out, or the run was stopped) gets a new HIT, so a resumed or long run still
        collects every item. An item with work on a closed HIT is left as it is: a new HIT could give the
        same worker the same item again."""
        records = await self.hit_store.hits(plan.run_id)
        free: dict[str, int] = {}  # the item's earlier HITs that cost nothing: each new one has a token of its own
        for r in records:
            if r.status in HIT_FREE:
                free[r.item_id] = free.get(r.item_id, 0) + 1
        have = {r.item_id for r in records if r.status not in HIT_FREE}
        room = rules.MAX_OPEN_HITS - sum(1 for r in records if r.status in (HitStatus.CREATING, HitStatus.OPEN))
        wanted = [i for i in form.items() if form.item_id(i) not in have][: max(0, room)]
        if not wanted:
            return []
        hit_type = await self.publisher.hit_type(plan, task)
        charge = rules.charge_cents(plan.reward_cents, plan.assignments)
        made = []
        for item in wanted:
            item_id = form.item_id(item)
            token = rules.form_token(plan.run_id, item_id, free.get(item_id, 0))
            try:
                record = await self.hit_store.reserve_hit(
                    plan.run_id, charge, lambda _slot, token=token: token, question=HTML, item_id=item_id,
                    max_assignments=plan.assignments,
                )
            except IntegrityError:
                continue  # reserved by another pass just now: step 1 of its next pass makes it
            except BudgetExceeded as exc:
                if plan.run_id not in self._over_budget:
                    log.warning("HIT manager: not publishing more items: %s", exc)
                self._over_budget.add(plan.run_id)
                break
            except HitLimitReached:
                break  # `--hits` items published: the rest wait for another run
            made.append(await self.publisher.create(record, plan, hit_type, form.question(item)))
        return made

    async def _retry_creating(self, plan: HitPlan, task: Task, form: HtmlForm) -> bool:
        """Create `creating` records again (their token makes it safe); False if MTurk could not be asked."""
        pending = await self.hit_store.hits(plan.run_id, statuses=(HitStatus.CREATING,))
        if not pending:
            return True
        items = {form.item_id(i): i for i in form.items()}
        hit_type = await self.publisher.hit_type(plan, task)
        resolved = True
        for record in pending:
            item = items.get(record.item_id)
            if item is None:  # the item left the task's source: MTurk is asked nothing for it
                await self.hit_store.set_hit(record.token, status=HitStatus.FAILED)
                continue
            try:
                await self.publisher.create(record, plan, hit_type, form.question(item))
            except MTurkError as exc:  # a refusal marked the record `failed`; a transient failure left it
                log.warning("run %s: HIT of item %s not made: %s", plan.run_id, record.item_id, exc)
                resolved = resolved and not exc.transient
        return resolved

    # ---- answers ------------------------------------------------------------------------------

    async def _collect(
        self, plan: HitPlan, form: HtmlForm, records: list[HitRecord], listed: dict[str, dict[str, Any]]
    ) -> None:
        """Read the assignments of HITs where MTurk has more work than we kept, or an auto-approval is due."""
        kept = await self.hit_store.form_answer_counts(plan.run_id)
        now = time.time()
        due = {a.hit_id for a in await self.hit_store.form_answers(plan.run_id, statuses=[AssignmentStatus.SUBMITTED])
               if a.auto_approve_at and a.auto_approve_at <= now}
        for record in records:
            hit = listed.get(record.hit_id or "")
            if hit is None or record.status in HIT_FREE:
                continue
            work = (int(hit.get("MaxAssignments") or 1) - int(hit.get("NumberOfAssignmentsAvailable") or 0)
                    - int(hit.get("NumberOfAssignmentsPending") or 0))
            if work > kept.get(record.hit_id or "", 0) or record.hit_id in due:
                await self.read(record, form)

    async def read(self, record: HitRecord, form: HtmlForm) -> list[dict[str, Any]]:
        """Keep every assignment of the HIT (once each); returns MTurk's assignments."""
        assert record.hit_id is not None
        work = [a async for a in self.mturk.pages("ListAssignmentsForHIT", "Assignments", HITId=record.hit_id)]
        for assignment in work:
            await self.keep(record, form, assignment)
        return work

    async def keep(self, record: HitRecord, form: HtmlForm, assignment: Mapping[str, Any]) -> None:
        try:
            parsed = form.record(assignment, item_id=record.item_id or None)
            item_id, answers, error = str(parsed["item_id"]), dict(parsed["answers"]), ""
        except ValueError as exc:  # kept with its error, so the requester sees it and can still review it
            log.warning("run %s: assignment %s unreadable: %s", record.run_id, assignment["AssignmentId"], exc)
            item_id, answers, error = record.item_id, {}, str(exc)[:1024]
        await self.hit_store.save_form_answer(FormAnswer(
            assignment_id=assignment["AssignmentId"], run_id=record.run_id, hit_id=record.hit_id or "",
            item_id=item_id, worker_id=assignment["WorkerId"], answers=answers, error=error,
            assignment_status=assignment["AssignmentStatus"], submitted_at=epoch(assignment.get("SubmitTime")),
            auto_approve_at=epoch(assignment.get("AutoApprovalTime")),
        ))

    async def _cap_workers(self, plan: HitPlan, task: Task, answers: list[FormAnswer]) -> None:
        """Hide the run's HITs from every worker who has answered `caps.per_worker_total` of its items.

        The cap is MTurk's qualification on the HIT type, granted once answers are read: a worker holding
        several of the run's HITs at that moment may still finish them, so a worker can pass the cap by as
        many HITs as they held at once (answers kept while settling this pass count from the next)."""
        answered = Counter(a.worker_id for a in answers)
        at_cap = [worker for worker, count in answered.items() if count >= task.caps.per_worker_total]
        if not at_cap:
            return
        type_id = await self.publisher.quals.type_id(at_cap_name(plan.run_id))
        for worker in at_cap:
            await self.publisher.quals.grant(type_id, worker)  # remembered: MTurk is asked once per worker

    async def _settle(
        self, plan: HitPlan, form: HtmlForm, records: list[HitRecord], answers: list[FormAnswer]
    ) -> None:
        """Closed HITs: their work (charge cut to it) or none (expired, deleted); reviewed once all is."""
        pending = {a.hit_id for a in answers if a.assignment_status == AssignmentStatus.SUBMITTED}
        for record in records:
            if record.hit_id is None:
                continue
            if record.status == HitStatus.CLOSED:
                await self._close(plan, form, record)
            elif record.status == HitStatus.SUBMITTED and record.hit_id not in pending:
                await self.hit_store.set_hit(record.token, status=HitStatus.REVIEWED)

    async def _close(self, plan: HitPlan, form: HtmlForm, record: HitRecord) -> None:
        assert record.hit_id is not None
        work = await self.read(record, form)
        if not work:
            await expire_unworked(self.mturk, self.hit_store, record)
            return
        each = rules.charge_cents(plan.reward_cents, record.max_assignments) // record.max_assignments
        submitted = [a for a in work if a["AssignmentStatus"] == AssignmentStatus.SUBMITTED]
        await self.hit_store.set_hit(
            record.token, status=HitStatus.SUBMITTED if submitted else HitStatus.REVIEWED,
            charge_cents=each * len(work),
            auto_approve_at=min((epoch(a.get("AutoApprovalTime")) for a in submitted), default=0.0),
        )
