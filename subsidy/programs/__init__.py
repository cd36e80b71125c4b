"""The programs in scope, as data: one TOML file per program batch in this folder (or in the
folder named by SUBSIDY_PROGRAMS_DIR): its lifecycle, its filing window, its policy (deadlines,
award rate, caps), and what the review service reads (batch.py): the award (`[award]`, Longgang) or
expert scoring and tiers (`[scoring]`, Shenzhen), the printed form, paper and windows, the public
notice, the materials checklist and the pre-check parameters. A 2026 batch, or a third program of
the same shape, is one more file.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from subsidy.contracts.lifecycle import LifecyclePolicy
from subsidy.programs.batch import (
    Form,
    LonggangAward,
    LonggangPreChecks,
    Materials,
    Paper,
    Publication,
    ShenzhenPreChecks,
    ShenzhenScoring,
)

PROGRAMS_DIR = Path(__file__).resolve().parent
LONGGANG_LIFECYCLE = "LonggangModelCallLifecycle"
SHENZHEN_LIFECYCLE = "ShenzhenGovAiScenarioLifecycle"
LIFECYCLES = (LONGGANG_LIFECYCLE, SHENZHEN_LIFECYCLE)
PRE_CHECKS_BY_LIFECYCLE: dict[str, type[LonggangPreChecks] | type[ShenzhenPreChecks]] = {
    LONGGANG_LIFECYCLE: LonggangPreChecks,
    SHENZHEN_LIFECYCLE: ShenzhenPreChecks,
}


class ProgramConfigError(ValueError):
    pass


class FilingWindow(BaseModel):
    """When a first online submission is accepted, both ends inclusive: either whole days
    (`first_day`..`last_day` in `timezone`) or exact moments (`opens_at`..`closes_at`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_day: date | None = None
    last_day: date | None = None
    timezone: str = "Asia/Shanghai"
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        days = self.first_day is not None and self.last_day is not None
        moments = self.opens_at is not None and self.closes_at is not None
        if days == moments:
            raise ValueError("give either first_day and last_day, or opens_at and closes_at")
        if days:
            tz = ZoneInfo(self.timezone)
            opens = datetime.combine(self.first_day, time(0), tz)  # type: ignore[arg-type]
            closes = datetime.combine(self.last_day, time(0), tz) + timedelta(days=1) - timedelta(microseconds=1)  # type: ignore[arg-type]
            object.__setattr__(self, "opens_at", opens)
            object.__setattr__(self, "closes_at", closes)
        if self.opens_at > self.closes_at:  # type: ignore[operator]
            raise ValueError("the window closes before it opens")
        return self

    def accepts(self, submitted_at: datetime) -> bool:
        if submitted_at.tzinfo is None:
            raise ValueError("submitted_at must be timezone-aware")
        return self.opens_at <= submitted_at <= self.closes_at  # type: ignore[operator]


class Retention(BaseModel):
    """`[retention]`: when the batch's personal data (sealed ID and mobile numbers, their lookup
    hashes, notify's sealed contact numbers) is erased by `subsidy retention run`. The program
    administrator sets `batch_closed_at` when the batch closes (all paid, objections settled);
    until then nothing is erased. What the audit needs stays: application numbers, versions,
    the enterprise's USCC and submitted facts, state changes, decisions, masked numbers, audit logs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_closed_at: AwareDatetime | None = None
    erase_personal_data_after_days: int = Field(default=180, ge=0)

    def erase_due(self, now: datetime) -> bool:
        closed = self.batch_closed_at
        return closed is not None and now >= closed + timedelta(days=self.erase_personal_data_after_days)


class Program(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
    name: str
    lifecycle: str
    filing: FilingWindow
    policy: LifecyclePolicy
    # What the review service reads (subsidy/programs/batch.py). Optional here so that a lifecycle
    # can be configured alone (e.g. in workflow tests); the review service refuses a batch that
    # lacks the table it needs, naming it.
    award: LonggangAward | None = None  # Longgang-shaped batches only
    scoring: ShenzhenScoring | None = None  # Shenzhen-shaped batches only
    form: Form | None = None
    paper: Paper | None = None
    publication: Publication | None = None
    materials: Materials | None = None
    pre_checks: LonggangPreChecks | ShenzhenPreChecks | None = None
    retention: Retention | None = None  # no [retention] (or no batch_closed_at): nothing erased

    @model_validator(mode="before")
    @classmethod
    def _pre_checks_of_the_lifecycle(cls, data: object) -> object:
        """`[pre_checks]` is read with the model of the batch's lifecycle, so errors name its fields."""
        if isinstance(data, dict) and isinstance(data.get("pre_checks"), dict):
            model = PRE_CHECKS_BY_LIFECYCLE.get(str(data.get("lifecycle")))
            if model is not None:
                try:
                    data = {**data, "pre_checks": model.model_validate(data["pre_checks"])}
                except ValidationError as exc:
                    problems = "; ".join(
                        f"pre_checks.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
                    )
                    raise ValueError(f"[pre_checks] of a {data['lifecycle']} batch: {problems}") from None
        return data

    @model_validator(mode="after")
    def _known_lifecycle(self) -> Self:
        if self.lifecycle not in LIFECYCLES:
            raise ValueError(f"lifecycle must be one of {LIFECYCLES}")
        if self.award is not None and self.lifecycle != LONGGANG_LIFECYCLE:
            raise ValueError(f"[award] is for {LONGGANG_LIFECYCLE} batches")
        if self.scoring is not None and self.lifecycle != SHENZHEN_LIFECYCLE:
            raise ValueError(f"[scoring] is for {SHENZHEN_LIFECYCLE} batches")
        # One number, one place: where the workflow's policy repeats a figure, the two must agree.
        if self.award is not None and self.policy.award_rate_percent not in (None, self.award.rate_percent):
            raise ValueError(
                f"[award] rate_percent = {self.award.rate_percent} but [policy] award_rate_percent = "
                f"{self.policy.award_rate_percent}: they must agree"
            )
        if self.scoring is not None and self.policy.tier_caps_fen not in (None, self.scoring.tier_maxima()):
            raise ValueError(
                f"[scoring] tier maxima {self.scoring.tier_maxima()} but [policy] tier_caps_fen = "
                f"{self.policy.tier_caps_fen}: they must agree"
            )
        if self.policy.filing_cutoff is None:  # the lifecycle learns the cutoff from the window
            object.__setattr__(self, "policy", self.policy.model_copy(update={"filing_cutoff": self.filing.closes_at}))
        return self


def load_programs(directory: Path | None = None) -> dict[str, Program]:
    directory = directory or Path(os.environ.get("SUBSIDY_PROGRAMS_DIR") or PROGRAMS_DIR)
    programs: dict[str, Program] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            program = Program.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, ValidationError) as exc:
            raise ProgramConfigError(f"{path}: {exc}") from exc
        if path.stem != program.code:
            raise ProgramConfigError(f"{path}: the file must be named after its code ({program.code}.toml)")
        programs[program.code] = program
    if not programs:
        raise ProgramConfigError(f"no program configuration (*.toml) in {directory}")
    return programs


@cache
def programs() -> dict[str, Program]:
    """The configured programs, loaded once per process."""
    return load_programs()


def __getattr__(name: str) -> object:  # `PROGRAMS` stays importable, loaded on first use
    if name == "PROGRAMS":
        return programs()
    raise AttributeError(name)
