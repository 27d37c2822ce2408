"""What Parley must remember about its Prolific account to act once: which studies it made for which run,
its block-list group, and each bonus (created, being paid, paid).

Prolific's calls that create or pay are not idempotent (a second `pay` pays again), so Parley writes its
intent here before each such call and its outcome after. One JSON file under the data directory, replaced
atomically (a killed process leaves the last whole ledger). The store has no table for these yet.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import tempfile
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


class Account(BaseModel):
    studies: list[StudyEntry] = Field(default_factory=list)
    bonuses: dict[str, BonusEntry] = Field(default_factory=dict)
    block_group: str = ""


class LedgerFile(BaseModel):
    accounts: dict[str, Account] = Field(default_factory=dict)


class Ledger:
    """One account's view of the ledger file; writes are serialized by a lock and saved before returning."""

    def __init__(self, path: pathlib.Path, account: str) -> None:
        self.path = path
        self.account_key = account
        self.lock = asyncio.Lock()
        self._file = LedgerFile.model_validate_json(path.read_bytes()) if path.exists() else LedgerFile()

    @property
    def account(self) -> Account:
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
