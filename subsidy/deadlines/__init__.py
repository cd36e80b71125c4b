"""Working-day deadline engine ("N working days" under Chinese law).

Pure library: no framework imports, no wall-clock reads, no I/O at call time except the explicit
loaders (:func:`load_schedule_dir`, :func:`default_schedule_dir`, :meth:`WorkingCalendar.default`,
:meth:`WorkingCalendar.from_schedules`). Safe to call from Temporal workflow code once a
:class:`WorkingCalendar` has been built (``WorkingCalendar.from_package()`` does no I/O).

In a workflow module, import this package through the sandbox::

    with workflow.unsafe.imports_passed_through():
        from subsidy import deadlines

(ZoneInfo objects created inside the Temporal sandbox are proxies that ``datetime`` rejects; use
:data:`SHANGHAI` from this package rather than building a ZoneInfo in workflow code.)

Alert hook: every function that consults the calendar — :meth:`WorkingCalendar.is_working_day`,
:func:`compute_deadline`, and :func:`working_day_offset` when given a calendar — raises
:class:`CalendarNotCovered` (attribute ``year``) for a year without official data. Catch it and
emit the operator alert; this package emits nothing itself.
"""

from .calendar import (
    PACKAGE_SCHEDULE_DIR,
    SCHEDULE_DIR_ENV,
    CalendarError,
    CalendarNotCovered,
    OfficialSchedule,
    ScheduleError,
    WorkingCalendar,
    default_schedule_dir,
    load_schedule_dir,
)
from .engine import (
    DEFAULT_CLOSING,
    SHANGHAI,
    Deadline,
    compute_deadline,
    format_closing,
    is_on_time,
    parse_closing,
    working_day_offset,
)

__all__ = [
    "DEFAULT_CLOSING",
    "PACKAGE_SCHEDULE_DIR",
    "SCHEDULE_DIR_ENV",
    "SHANGHAI",
    "CalendarError",
    "CalendarNotCovered",
    "Deadline",
    "OfficialSchedule",
    "ScheduleError",
    "WorkingCalendar",
    "compute_deadline",
    "default_schedule_dir",
    "format_closing",
    "is_on_time",
    "load_schedule_dir",
    "parse_closing",
    "working_day_offset",
]
