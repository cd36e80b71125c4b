"""What a rule tells a reviewer: its clause, `passed` or `needs_person` (never a rejection), a
Chinese explanation, the evidence it read, and the version of the reference list it read, if any."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["passed", "needs_person"]


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    clause: str
    status: Status
    explanation: str  # Chinese, for the reviewer
    evidence: dict[str, Any]  # the facts and reference entries the rule read
    reference_version: str | None = None  # the imported list's version (content hash), when one was read
