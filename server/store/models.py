"""SQLModel tables. Only `server.store` imports this module."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.states import RunStatus

SCHEMA_VERSION = 1


def now() -> float:
    return time.time()


class Meta(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True, max_length=64)
    value: str


class TaskRun(SQLModel, table=True):
    __tablename__ = "task_run"
    id: str = Field(primary_key=True, max_length=64)
    task_module: str = Field(max_length=255)
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=RunStatus.ACTIVE, max_length=32, index=True)  # a RunStatus
    conversations_formed: int = 0
    created_at: float = Field(default_factory=now)
    # Lease: the instance that runs this task run, and until when (see docs/architecture.md).
    owner: str = Field(default="", max_length=64)
    lease_until: float = 0.0


class AgentRow(SQLModel, table=True):
    __tablename__ = "agent"
    __table_args__ = (
        UniqueConstraint("run_id", "assignment_id", name="uq_agent_assignment"),
        Index("ix_agent_run_state", "run_id", "state"),
        Index("ix_agent_worker", "worker_id", "run_id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    run_id: str = Field(max_length=64)
    worker_id: str = Field(max_length=128)
    assignment_id: str = Field(max_length=128)
    hit_id: str = Field(default="", max_length=128)
    turk_submit_to: str = Field(default="", max_length=512)
    state: str = Field(max_length=32)
    role: str = Field(default="", max_length=128)
    conversation_id: str = Field(default="", max_length=40)
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"
    id: str = Field(primary_key=True, max_length=40)
    run_id: str = Field(max_length=64, index=True)
    kind: str = Field(default="task", max_length=16)  # task | onboarding
    index: int = 0
    state: str = Field(max_length=32)
    context: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    # role -> agent id (humans) or "bot:<role>"
    participants: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    end_reason: str = Field(default="", max_length=500)
    created_at: float = Field(default_factory=now)
    ended_at: float | None = None


class MessageRow(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("agent_id", "client_id", name="uq_message_client_id"),
        Index("ix_message_conversation", "conversation_id", "created_at"),
    )
    id: str = Field(primary_key=True, max_length=40)
    run_id: str = Field(max_length=64)
    conversation_id: str = Field(max_length=40)
    agent_id: str | None = Field(default=None, max_length=40)  # None for bots and the world
    client_id: str | None = Field(default=None, max_length=64)
    sender: str = Field(max_length=128)
    kind: str = Field(default="chat", max_length=16)
    text: str
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: float = Field(default_factory=now)


class EventRow(SQLModel, table=True):
    """One agent's outbound stream: gap-free seq per agent."""

    __tablename__ = "event"
    agent_id: str = Field(primary_key=True, max_length=40)
    seq: int = Field(primary_key=True)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: float = Field(default_factory=now)


class OnboardingResult(SQLModel, table=True):
    __tablename__ = "onboarding_result"
    worker_id: str = Field(primary_key=True, max_length=128)
    task_name: str = Field(primary_key=True, max_length=128)
    passed: bool
    attempts: int = 1
    updated_at: float = Field(default_factory=now)


class WorldData(SQLModel, table=True):
    __tablename__ = "world_data"
    conversation_id: str = Field(primary_key=True, max_length=40)
    run_id: str = Field(max_length=64, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: float = Field(default_factory=now)


class WorkerRow(SQLModel, table=True):
    __tablename__ = "worker"
    id: str = Field(primary_key=True, max_length=128)
    blocked: bool = False
    block_reason: str = Field(default="", max_length=500)
    created_at: float = Field(default_factory=now)
