"""Review's deadline activity keeps each working-day deadline with the calendar data version it was
counted with (review.computed_deadlines): what the console's 期限 tab shows. A retried computation
of the same deadline keeps one row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from services.review.deadlines.activities import DeadlineActivities
from subsidy.contracts.lifecycle import ComputePaperDeadline, LifecyclePolicy
from subsidy.deadlines import WorkingCalendar

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def review_pool(stack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2, server_settings={"search_path": "review,public"})
    try:
        yield pool
    finally:
        await pool.close()


async def test_a_paper_deadline_is_kept_with_its_calendar_version_once(review_pool: asyncpg.Pool) -> None:
    application_no = f"LG2025-{uuid.uuid4().hex[:8]}"
    calendar = WorkingCalendar.from_package()
    request = ComputePaperDeadline(
        program="LG-AI-MODEL-2025", application_no=application_no,
        trigger=datetime(2026, 9, 30, 10, 0, tzinfo=SH),  # just before the National Day holiday
        trigger_kind="confirmed_by_phone", policy=LifecyclePolicy(paper_working_days=5), correlation_id="corr-cal-version",
    )
    activities = DeadlineActivities(review_pool, calendar, load_calendar=WorkingCalendar.from_package)
    first = await ActivityEnvironment().run(activities.compute_paper_deadline, request)
    again = await ActivityEnvironment().run(activities.compute_paper_deadline, request)  # a retry
    rows = await review_pool.fetch("SELECT * FROM review.computed_deadlines WHERE application_no = $1", application_no)

    assert first == again and first.calendar_version
    assert len(rows) == 1
    row = rows[0]
    assert row["calendar_version"] == first.calendar_version
    assert row["deadline"] == first.deadline and row["trigger_at"] == request.trigger
    assert (row["kind"], row["trigger_kind"], row["working_days"], row["program"]) == ("paper", "confirmed_by_phone", 5, request.program)
    assert first.deadline.astimezone(SH).date() > datetime(2026, 10, 8).date()  # five working days without it would end on Oct 7
