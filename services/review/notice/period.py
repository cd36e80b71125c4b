"""The notice period: N working days (the program's `[publication] notice_working_days`) after the
day the notice went up, ending at the office's closing time (the program's `paper_closing`, the
windows' close of business), counted by the deadline engine on the official calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from subsidy.deadlines import WorkingCalendar, compute_deadline
from subsidy.programs import programs


@dataclass(frozen=True)
class NoticePeriod:
    starts_at: datetime
    ends_at: datetime
    working_days: int


@cache
def _calendar() -> WorkingCalendar:
    return WorkingCalendar.default()


def notice_period(program: str, starts_at: datetime, *, calendar: WorkingCalendar | None = None) -> NoticePeriod:
    config = programs()[program]
    days = config.publication.notice_working_days
    deadline = compute_deadline(starts_at, days, calendar=calendar or _calendar(), closing=config.policy.paper_closing)
    return NoticePeriod(starts_at=starts_at, ends_at=deadline.deadline, working_days=days)
