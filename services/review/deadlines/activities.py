"""Review's deadline activity (task queue `subsidy-review`): the paper deadline of an application,
counted in working days under Chinese law (subsidy.deadlines), with its reminder times.

`paper_deadline_record` is the rule itself, a plain function (no I/O, no framework), so unit and
workflow tests call it directly. The activity adds what needs the world: the operator alert when a
year has no official calendar.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.review import repository
from subsidy.contracts.lifecycle import ACTIVITY_COMPUTE_PAPER_DEADLINE, ComputePaperDeadline, DeadlineRecord, LifecyclePolicy
from subsidy.contracts.platform_events import CalendarAlertRaised
from subsidy.contracts.topics import CALENDAR_ALERT
from subsidy.deadlines import CalendarNotCovered, Deadline, ScheduleError, WorkingCalendar, compute_deadline, working_day_offset
from subsidy.outbox import CORRELATION_ID_HEADER, write_event

log = structlog.get_logger(__name__)

# Alert ids are uuid5(namespace, "<workflow id>:<year>"): one alert per application and missing year.
CALENDAR_ALERT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:subsidy:calendar-alert")


# --- the rule ------------------------------------------------------------------------------------


def paper_deadline_record(request: ComputePaperDeadline, calendar: WorkingCalendar) -> DeadlineRecord:
    """The paper deadline: `paper_working_days` working days after the trigger, at the windows'
    closing time, and the reminders before it.

    Raises CalendarNotCovered when a day to count falls in a year without official data, and
    ValueError for a policy that asks for a negative number of days.
    """
    policy = request.policy
    deadline = compute_deadline(request.trigger, policy.paper_working_days, calendar=calendar, closing=policy.paper_closing)
    return DeadlineRecord(
        kind="paper",
        deadline=deadline.deadline,
        trigger=deadline.trigger,
        trigger_kind=request.trigger_kind,
        working_days=deadline.working_days,
        calendar_version=deadline.calendar_version,
        reminders=reminder_times(deadline, policy),
    )


def reminder_times(deadline: Deadline, policy: LifecyclePolicy) -> tuple[datetime, ...]:
    """`reminder_time` on the working day `n` working days before the last day, for each `n` of
    `reminder_working_days_before` that still falls on a counted day (a reminder before the clock
    started is skipped), and on the last day itself if `remind_on_last_day`. Sorted, without
    duplicates, all before the deadline, in the office's time zone."""
    days = set()
    for before in policy.reminder_working_days_before:
        if before < 0:
            raise ValueError(f"reminder_working_days_before must be >= 0, got {before}")
        if before < len(deadline.working_days):
            days.add(working_day_offset(deadline, before))
    if policy.remind_on_last_day:
        days.add(deadline.last_day)
    zone = deadline.deadline.tzinfo
    times = {datetime.combine(day, policy.reminder_time, tzinfo=zone) for day in days}
    return tuple(sorted(t for t in times if t < deadline.deadline))


# --- the activity --------------------------------------------------------------------------------


class DeadlineActivities:
    """`deadlines.compute_paper_deadline`, with the calendar built once at start.

    When a year is not covered, the calendar is loaded again (`load_calendar`) before giving up:
    an operator who adds the year's schedule file makes the next retry succeed without a restart.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        calendar: WorkingCalendar,
        *,
        load_calendar: Callable[[], WorkingCalendar] = WorkingCalendar.default,
    ) -> None:
        self._pool = pool
        self._calendar = calendar
        self._load_calendar = load_calendar

    def all(self) -> Sequence[Callable[..., Any]]:
        return (self.compute_paper_deadline,)

    @activity.defn(name=ACTIVITY_COMPUTE_PAPER_DEADLINE)
    async def compute_paper_deadline(self, request: ComputePaperDeadline) -> DeadlineRecord:
        try:
            try:
                record = paper_deadline_record(request, self._calendar)
            except CalendarNotCovered:
                if not await self._reload_calendar():
                    raise
                record = paper_deadline_record(request, self._calendar)
        except CalendarNotCovered as exc:
            await self._alert_calendar_not_covered(request, exc)
            # Retryable: the workflow's retry policy keeps trying until the schedule is loaded.
            raise ApplicationError(str(exc), type="CalendarNotCovered", non_retryable=False) from exc
        except ValueError as exc:  # the program's policy is invalid: no retry can fix it
            raise ApplicationError(str(exc), type="InvalidLifecyclePolicy", non_retryable=True) from exc
        await self._remember(request, record)
        return record

    async def _remember(self, request: ComputePaperDeadline, record: DeadlineRecord) -> None:
        """Keep the deadline with the calendar version it was counted with (the console's 期限 tab;
        the state change that carries the deadline does not name the calendar)."""
        async with self._pool.acquire() as conn:
            await repository.record_computed_deadline(
                conn, application_no=request.application_no, program=request.program, kind=record.kind,
                trigger_at=record.trigger, trigger_kind=record.trigger_kind, deadline=record.deadline,
                working_days=len(record.working_days), calendar_version=record.calendar_version or "unknown")

    async def _reload_calendar(self) -> bool:
        """Load the calendar data again; True if it changed."""
        try:
            fresh = await asyncio.to_thread(self._load_calendar)
        except ScheduleError as exc:
            log.error("calendar schedules could not be loaded", error=str(exc))
            return False
        if fresh.version == self._calendar.version:
            return False
        log.info("calendar reloaded", calendar_version=fresh.version, covered_years=fresh.covered_years[-3:])
        self._calendar = fresh
        return True

    async def _alert_calendar_not_covered(self, request: ComputePaperDeadline, exc: CalendarNotCovered) -> None:
        """Write the operator alert through review's outbox, once per workflow and year.

        Every attempt tries (the id makes later ones no-ops), so an alert whose first write failed
        is written by a later attempt rather than lost."""
        info = activity.info()
        alert = CalendarAlertRaised(
            event_id=str(uuid.uuid5(CALENDAR_ALERT_NAMESPACE, f"{info.workflow_id or info.activity_id}:{exc.year}")),
            year=exc.year,
            program=request.program,
            application_no=request.application_no,
            message=str(exc),
            occurred_at=datetime.now(UTC),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            written = await write_event(
                conn,
                topic=CALENDAR_ALERT,
                key=request.application_no,
                event_id=alert.event_id,
                payload=alert,
                headers={CORRELATION_ID_HEADER: request.correlation_id},
            )
        bound = log.bind(year=exc.year)  # application and correlation: bound by subsidy.log_context
        if written:
            bound.error("paper deadline reaches a year without an official calendar; operator alert raised", message=str(exc))
        else:
            bound.warning("paper deadline still reaches a year without an official calendar", attempt=info.attempt)
