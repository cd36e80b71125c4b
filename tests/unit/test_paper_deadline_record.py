"""The paper deadline rule (services/review/deadlines/activities.paper_deadline_record), without servers.

2026 New Year (chinese-calendar): holidays Thu 2026-01-01 .. Sat 2026-01-03, adjusted working day
Sun 2026-01-04. The package covers up to 2026; 2027 is not covered.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.review.deadlines.activities import paper_deadline_record
from subsidy.contracts.lifecycle import ComputePaperDeadline, LifecyclePolicy
from subsidy.deadlines import CalendarNotCovered, WorkingCalendar

SH = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar.from_package()


def request(trigger: datetime, policy: LifecyclePolicy | None = None) -> ComputePaperDeadline:
    return ComputePaperDeadline(
        program="LG-AI-MODEL-2025",
        application_no="LG2025-0001",
        trigger=trigger,
        trigger_kind="sms_delivered",
        policy=policy or LifecyclePolicy(),
        correlation_id="corr-1",
    )


def test_five_working_days_across_new_year_with_reminders() -> None:
    trigger = datetime(2025, 12, 30, 10, 0, tzinfo=SH)
    record = paper_deadline_record(request(trigger), CALENDAR)

    assert record.kind == "paper" and record.trigger_kind == "sms_delivered"
    assert record.trigger == trigger
    assert record.deadline == datetime(2026, 1, 7, 18, 0, tzinfo=SH)
    assert record.deadline.utcoffset() == timedelta(hours=8)
    assert record.working_days == (
        date(2025, 12, 31),
        date(2026, 1, 4),  # 调休: Sunday counts
        date(2026, 1, 5),
        date(2026, 1, 6),
        date(2026, 1, 7),
    )
    assert record.calendar_version is not None and record.calendar_version.startswith("chinese-calendar==")
    assert record.reminders == (
        datetime(2026, 1, 5, 9, 0, tzinfo=SH),  # 2 working days before the last day
        datetime(2026, 1, 7, 9, 0, tzinfo=SH),  # the last day
    )


def test_a_reminder_before_the_first_counted_day_is_skipped() -> None:
    trigger = datetime(2025, 12, 30, 10, 0, tzinfo=SH)
    record = paper_deadline_record(request(trigger, LifecyclePolicy(paper_working_days=1)), CALENDAR)

    assert record.working_days == (date(2025, 12, 31),)
    assert record.deadline == datetime(2025, 12, 31, 18, 0, tzinfo=SH)
    assert record.reminders == (datetime(2025, 12, 31, 9, 0, tzinfo=SH),)


def test_reminders_are_deduplicated_sorted_and_before_the_deadline() -> None:
    trigger = datetime(2025, 12, 30, 10, 0, tzinfo=SH)
    policy = LifecyclePolicy(reminder_working_days_before=(0, 3, 2, 2), remind_on_last_day=True)
    record = paper_deadline_record(request(trigger, policy), CALENDAR)
    assert record.reminders == (
        datetime(2026, 1, 4, 9, 0, tzinfo=SH),
        datetime(2026, 1, 5, 9, 0, tzinfo=SH),
        datetime(2026, 1, 7, 9, 0, tzinfo=SH),
    )

    with pytest.raises(ValueError, match="reminder_time must be before paper_closing"):
        LifecyclePolicy(reminder_working_days_before=(), reminder_time=time(18, 0))  # refused when loaded

    none = LifecyclePolicy(reminder_working_days_before=(), remind_on_last_day=False)
    assert paper_deadline_record(request(trigger, none), CALENDAR).reminders == ()


def test_a_deadline_reaching_an_uncovered_year_raises() -> None:
    trigger = datetime(2026, 12, 28, 10, 0, tzinfo=SH)
    with pytest.raises(CalendarNotCovered) as raised:
        paper_deadline_record(request(trigger, LifecyclePolicy(paper_working_days=10)), CALENDAR)
    assert raised.value.year == 2027
