"""Requester operations on workers: qualification types and grants, blocks, notifications."""

from __future__ import annotations

from typing import Any

from server.sandbox.errors import RequestError
from server.sandbox.model import Grant, Notification, QualificationType, Worker, grant_key
from server.sandbox.quals import SYSTEM_TYPES, held_value
from server.sandbox.registry import Ctx, new_id, operation
from server.sandbox.wire import (
    grant_out,
    page,
    qualification_type_out,
    system_qualification_out,
    system_qualification_type_out,
)

MAX_NOTIFY_WORKERS = 100
MAX_SUBJECT = 200
MAX_MESSAGE = 4096


@operation("CreateQualificationType")
def create_qualification_type(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Name"]
    if any(existing.name == name for existing in ctx.state.qualification_types.values()):
        raise RequestError(
            "You have already created a QualificationType with this name. A QualificationType's name must be "
            "unique among all of the QualificationTypes created by the same user.",
            "AWS.MechanicalTurk.QualificationTypeAlreadyExists",
        )
    if params.get("AutoGranted") and params.get("Test"):
        raise RequestError("A QualificationType cannot be both AutoGranted and have a Test.")
    record = QualificationType(
        qualification_type_id=new_id(),
        creation_time=ctx.now,
        name=name,
        description=params["Description"],
        keywords=params.get("Keywords") or "",
        status=params["QualificationTypeStatus"],
        test=params.get("Test"),
        answer_key=params.get("AnswerKey"),
        test_duration=params.get("TestDurationInSeconds"),
        retry_delay=params.get("RetryDelayInSeconds"),
        auto_granted=bool(params.get("AutoGranted")),
        auto_granted_value=params.get("AutoGrantedValue", 1),
    )
    ctx.state.qualification_types[record.qualification_type_id] = record
    return {"QualificationType": qualification_type_out(record)}


@operation("GetQualificationType", mutates=False)
def get_qualification_type(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    type_id = params["QualificationTypeId"]
    if type_id in SYSTEM_TYPES:
        return {"QualificationType": system_qualification_type_out(type_id)}
    return {"QualificationType": qualification_type_out(ctx.qualification_type(type_id))}


@operation("ListQualificationTypes", mutates=False)
def list_qualification_types(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    query = (params.get("Query") or "").lower()
    records = [qualification_type_out(record) for record in ctx.state.qualification_types.values()]
    if not params.get("MustBeOwnedByCaller"):
        records += [system_qualification_type_out(type_id) for type_id in SYSTEM_TYPES]
    if params["MustBeRequestable"]:
        records = [record for record in records if record["IsRequestable"]]
    if query:
        records = [
            record
            for record in records
            if query in record["Name"].lower() or query in record.get("Description", "").lower()
        ]
    chunk, extra = page(records, params)
    return {**extra, "QualificationTypes": list(chunk)}


@operation("AssociateQualificationWithWorker")
def associate_qualification_with_worker(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    type_id, worker_id = params["QualificationTypeId"], params["WorkerId"]
    ctx.qualification_type(type_id)
    ctx.state.worker(worker_id)
    ctx.state.grants[grant_key(type_id, worker_id)] = Grant(
        qualification_type_id=type_id,
        worker_id=worker_id,
        integer_value=params.get("IntegerValue", 1),
        grant_time=ctx.now,
    )
    return {}


@operation("DisassociateQualificationFromWorker")
def disassociate_qualification_from_worker(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    type_id, worker_id = params["QualificationTypeId"], params["WorkerId"]
    ctx.qualification_type(type_id)
    grant = ctx.state.grants.get(grant_key(type_id, worker_id))
    if grant is None or grant.status != "Granted":
        raise RequestError(
            f"Worker {worker_id} does not hold QualificationType {type_id}.",
            "AWS.MechanicalTurk.QualificationDoesNotExist",
        )
    grant.status = "Revoked"
    return {}


@operation("GetQualificationScore", mutates=False)
def get_qualification_score(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    type_id, worker_id = params["QualificationTypeId"], params["WorkerId"]
    if type_id in SYSTEM_TYPES:
        held = held_value(ctx.state, ctx.state.workers.get(worker_id) or Worker(worker_id=worker_id), type_id)
        if held is not None:
            return {"Qualification": system_qualification_out(type_id, worker_id, held)}
    else:
        ctx.qualification_type(type_id)
        grant = ctx.state.grants.get(grant_key(type_id, worker_id))
        if grant is not None:
            return {"Qualification": grant_out(grant)}
    raise RequestError(
        f"You requested a Qualification that does not exist. ({type_id} for {worker_id})",
        "AWS.MechanicalTurk.QualificationDoesNotExist",
    )


@operation("ListWorkersWithQualificationType", mutates=False)
def list_workers_with_qualification_type(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    type_id = params["QualificationTypeId"]
    ctx.qualification_type(type_id)
    status = params.get("Status")
    grants = [
        grant
        for grant in ctx.state.grants.values()
        if grant.qualification_type_id == type_id and (status is None or grant.status == status)
    ]
    chunk, extra = page(grants, params)
    return {**extra, "Qualifications": [grant_out(grant) for grant in chunk]}


@operation("CreateWorkerBlock")
def create_worker_block(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    ctx.state.worker(params["WorkerId"])
    ctx.state.blocks[params["WorkerId"]] = params["Reason"]
    return {}


@operation("DeleteWorkerBlock")
def delete_worker_block(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    ctx.state.blocks.pop(params["WorkerId"], None)
    return {}


@operation("ListWorkerBlocks", mutates=False)
def list_worker_blocks(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    blocks = list(ctx.state.blocks.items())
    chunk, extra = page(blocks, params)
    return {**extra, "WorkerBlocks": [{"WorkerId": worker, "Reason": reason} for worker, reason in chunk]}


@operation("NotifyWorkers")
def notify_workers(ctx: Ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Every message is kept (the worker site shows it); a worker id never seen gets MTurk's soft failure."""
    if len(params["WorkerIds"]) > MAX_NOTIFY_WORKERS:
        raise RequestError(f"NotifyWorkers accepts at most {MAX_NOTIFY_WORKERS} WorkerIds.")
    if len(params["Subject"]) > MAX_SUBJECT or len(params["MessageText"]) > MAX_MESSAGE:
        raise RequestError(f"Subject is limited to {MAX_SUBJECT} and MessageText to {MAX_MESSAGE} characters.")
    failures = []
    for worker_id in dict.fromkeys(params["WorkerIds"]):
        if worker_id not in ctx.state.workers:
            failures.append(
                {
                    "NotifyWorkersFailureCode": "SoftFailure",
                    "NotifyWorkersFailureMessage": f"Worker {worker_id} has not worked for this requester.",
                    "WorkerId": worker_id,
                }
            )
            continue
        ctx.state.notifications.append(
            Notification(
                worker_id=worker_id,
                subject=params["Subject"],
                message_text=params["MessageText"],
                time=ctx.now,
            )
        )
    return {"NotifyWorkersFailureStatuses": failures}
