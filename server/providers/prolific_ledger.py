"""What Parley must remember about its Prolific account to act once: which studies it made for which run,
its block-list group, and each bonus (created, being paid, paid).

Prolific's calls that create or pay are not idempotent (a second `pay` pays again), so Parley writes its
intent here before each such call and its outcome after. One JSON file under the data directory, replaced
atomically (a killed process leaves the last whole ledger). The store has no table for these yet.

Several processes may share the file (a server and `parley prolific ...` commands): every change happens
inside `hold()`, which takes an advisory lock on `<ledger>.lock`, reads the file afresh, and is the only
writer until it returns; reads outside it see the file as it was last written.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pathlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from pydantic import BaseModel, Field

BonusState = Literal["created", "paying", "paid"]


class StudyEntry(BaseModel):
    run_id: str
    study_id: str = ""  # "" while being created: a crash there is resolved by the study's internal name
    reward_cents: int = 0


class BonusEntry(BaseModel):
    key: str
    run_id: str
    submission_id: str
    worker_id: str
    amount_cents: int
    fee_cents: int = 0
    vat_cents: int = 0
    bulk_id: str = ""
    state: BonusState = "created"


class StudyPlan(BaseModel):
    """How a run is recruited on Prolific (the counterpart of an MTurk run's HIT plan)."""

    run_id: str
    task_module: str
    reward_cents: int
    budget_cents: int = 0  # 0: no cap (refused on live Prolific)
    estimated_minutes: int = 10
    max_minutes: int = 40
    overbook: float = 1.25
    publishing: bool = True


class Account(BaseModel):
    plans: dict[str, StudyPlan] = Field(default_factory=dict)
    studies: list[StudyEntry] = Field(default_factory=list)
    bonuses: dict[str, BonusEntry] = Field(default_factory=dict)
    block_group: str = ""
    groups: dict[str, str] = Field(default_factory=dict)  # Parley's exclusion lists: name -> group id


class LedgerFile(BaseModel):
    accounts: dict[str, Account] = Field(default_factory=dict)


class Ledger:
    """One account's view of the ledger file."""

    def __init__(self, path: pathlib.Path, account: str) -> None:
        self.path = path
        self.account_key = account
        self._lock = asyncio.Lock()
        self._file = LedgerFile()
        self._seen: int | None = None  # mtime of the file as last read or written
        self._refresh()

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._seen:
            self._file = LedgerFile.model_validate_json(self.path.read_bytes())
            self._seen = mtime

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[Ledger]:
        """Be the ledger's one writer (in this process and across processes) for the block."""
        async with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                self._seen = None
                self._refresh()
                yield self
            finally:
                os.close(fd)  # closing the descriptor drops the lock

    @property
    def account(self) -> Account:
        if not self._lock.locked():
            self._refresh()
        return self._file.accounts.setdefault(self.account_key, Account())

    def studies(self, run_id: str) -> list[StudyEntry]:
        return [s for s in self.account.studies if s.run_id == run_id]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(self._file.model_dump_json(indent=1).encode())
            os.replace(temp, self.path)
        except BaseException:
            pathlib.Path(temp).unlink(missing_ok=True)
            raise
        self._seen = self.path.stat().st_mtime_ns
