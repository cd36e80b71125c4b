"""Working-day deadline computation ("N working days" under Chinese law). Pure and deterministic.

Rules:

* The day of the triggering event is never counted (民法典 art. 201): counting starts on the day
  after the event's local calendar date (Asia/Shanghai by default), whatever the time of day and
  whether or not that date is a working day.
* Statutory holidays and ordinary weekends are skipped; adjusted working days (调休) count.
* The deadline is the closing time of the office (art. 203, default 18:00) on the N-th counted
  working day.
* A year with no official calendar data raises :class:`CalendarNotCovered`; never a guess.

No wall-clock reads and no I/O: callers pass the trigger time and a prepared
:class:`WorkingCalendar`, so workflow code may call these functions directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .calendar import WorkingCalendar

__all__ = [
    "SHANGHAI",
    "DEFAULT_CLOSING",
    "Deadline",
    "compute_deadline",
    "working_day_offset",
    "is_on_time",
    "format_closing",
    "parse_closing",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_CLOSING = time(18, 0)
_ONE_DAY = timedelta(days=1)


def _require_aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {value.isoformat()}); attach a UTC offset")
    return value


def _require_zone(tz: Any) -> ZoneInfo:
    if not isinstance(tz, ZoneInfo):
        raise TypeError(f"tz must be a zoneinfo.ZoneInfo (e.g. ZoneInfo('Asia/Shanghai')), got {type(tz).__name__}")
    if not issubclass(type(tz), tzinfo):
        # A Temporal sandbox proxy: ZoneInfo objects created inside the workflow sandbox are wrapped
        # and rejected by datetime's C code.
        raise TypeError(
            "tz is a proxied ZoneInfo, not a real tzinfo: inside a Temporal workflow import "
            "subsidy.deadlines under workflow.unsafe.imports_passed_through() and use subsidy.deadlines.SHANGHAI"
        )
    return tz


def _require_closing(closing: Any) -> time:
    if not isinstance(closing, time):
        raise TypeError(f"closing must be a datetime.time, got {type(closing).__name__}")
    if closing.tzinfo is not None:
        raise ValueError("closing must be a naive wall-clock time; the office time zone is given by tz")
    return closing


def format_closing(closing: time) -> str:
    """``time(18, 0)`` -> ``"18:00"`` (seconds/microseconds only if non-zero)."""
    if closing.microsecond:
        return closing.isoformat(timespec="microseconds")
    if closing.second:
        return closing.isoformat(timespec="seconds")
    return closing.isoformat(timespec="minutes")


def parse_closing(text: str) -> time:
    """Parse ``HH:MM`` (or ``HH:MM:SS``) into a naive time. Raises ValueError."""
    if not isinstance(text, str) or len(text) not in (5, 8) or text[2] != ":" or (len(text) == 8 and text[5] != ":"):
        raise ValueError(f"closing time must be HH:MM (24-hour), got {text!r}")
    try:
        value = time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"closing time must be HH:MM (24-hour), got {text!r}") from None
    return value


def _rfc3339(dt: datetime) -> str:
    s = dt.isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") and dt.tzinfo is timezone.utc else s


def _parse_rfc3339(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an RFC 3339 string, got {value!r}")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not an RFC 3339 timestamp: {value!r}") from None
    return _require_aware(dt, name)


@dataclass(frozen=True)
class Deadline:
    """A computed deadline and everything needed to audit it.

    ``trigger`` is the event instant expressed in the office time zone; ``deadline`` is
    ``closing`` on ``working_days[-1]`` in that zone; ``calendar_version`` names the calendar data
    used (see :meth:`WorkingCalendar.version_for_years`).
    """

    trigger: datetime
    deadline: datetime
    working_days: tuple[date, ...]
    calendar_version: str
    closing: time = DEFAULT_CLOSING

    def __post_init__(self) -> None:
        _require_aware(self.trigger, "trigger")
        _require_aware(self.deadline, "deadline")
        _require_closing(self.closing)
        days = tuple(self.working_days)
        object.__setattr__(self, "working_days", days)
        if not days:
            raise ValueError("a Deadline needs at least one counted working day")
        if any(isinstance(d, datetime) or not isinstance(d, date) for d in days):
            raise TypeError("working_days must be datetime.date values")
        if any(a >= b for a, b in zip(days, days[1:])):
            raise ValueError("working_days must be strictly increasing")
        if not isinstance(self.calendar_version, str) or not self.calendar_version:
            raise ValueError("calendar_version must be a non-empty string")
        if self.deadline.date() != days[-1] or self.deadline.timetz().replace(tzinfo=None) != self.closing:
            raise ValueError(
                f"deadline {self.deadline.isoformat()} is not {format_closing(self.closing)} on the last "
                f"counted working day {days[-1].isoformat()}"
            )
        trigger_local = self.trigger.astimezone(self.deadline.tzinfo)
        if days[0] <= trigger_local.date():
            raise ValueError("counted working days must start after the trigger's local date")

    @property
    def deadline_utc(self) -> datetime:
        return self.deadline.astimezone(timezone.utc)

    @property
    def last_day(self) -> date:
        return self.working_days[-1]

    @property
    def timezone(self) -> str:
        tz = self.deadline.tzinfo
        return tz.key if isinstance(tz, ZoneInfo) else str(tz)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict (RFC 3339 timestamps with the office offset, e.g. ``+08:00``)."""
        return {
            "trigger": _rfc3339(self.trigger),
            "deadline": _rfc3339(self.deadline),
            "deadline_utc": _rfc3339(self.deadline_utc),
            "timezone": self.timezone,
            "working_days": [d.isoformat() for d in self.working_days],
            "calendar_version": self.calendar_version,
            "closing": format_closing(self.closing),
        }

    @classmethod
    def from_json_dict(cls, data: Any) -> Deadline:
        """Inverse of :meth:`to_json_dict`. Validates and raises ValueError on malformed input."""
        if not isinstance(data, dict):
            raise ValueError("Deadline JSON must be an object")
        missing = [k for k in ("trigger", "deadline", "working_days", "calendar_version", "closing") if k not in data]
        if missing:
            raise ValueError(f"Deadline JSON is missing key(s): {', '.join(missing)}")
        tz_name = data.get("timezone", "Asia/Shanghai")
        try:
            tz = ZoneInfo(tz_name) if isinstance(tz_name, str) else None
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
        if tz is None:
            raise ValueError(f"unknown timezone in Deadline JSON: {tz_name!r}")
        trigger = _parse_rfc3339(data["trigger"], "trigger").astimezone(tz)
        deadline_given = _parse_rfc3339(data["deadline"], "deadline")
        deadline = deadline_given.astimezone(tz)
        if deadline.utcoffset() != deadline_given.utcoffset():
            raise ValueError(f"deadline {data['deadline']} does not carry the {tz_name} offset")
        if "deadline_utc" in data and _parse_rfc3339(data["deadline_utc"], "deadline_utc") != deadline:
            raise ValueError("deadline_utc does not match deadline")
        raw_days = data["working_days"]
        if not isinstance(raw_days, list):
            raise ValueError("working_days must be a list of YYYY-MM-DD strings")
        try:
            days = tuple(date.fromisoformat(d) for d in raw_days)
        except (TypeError, ValueError):
            raise ValueError(f"working_days must be YYYY-MM-DD strings: {raw_days!r}") from None
        return cls(
            trigger=trigger,
            deadline=deadline,
            working_days=days,
            calendar_version=data["calendar_version"],
            closing=parse_closing(data["closing"]),
        )


def compute_deadline(
    trigger: datetime,
    working_days: int,
    *,
    calendar: WorkingCalendar,
    closing: time = DEFAULT_CLOSING,
    tz: ZoneInfo = SHANGHAI,
) -> Deadline:
    """Deadline for an act due ``working_days`` working days after ``trigger``.

    ``trigger`` must be timezone-aware (ValueError if naive). Its local date in ``tz`` is never
    counted. ``working_days`` must be an int >= 1 (ValueError). ``closing`` is the office's
    closing time in ``tz``.

    Raises :class:`~subsidy.deadlines.CalendarNotCovered` (``.year``) as soon as a day to examine
    falls in a year without official data — the signal for the caller to alert an operator.
    """
    _require_aware(trigger, "trigger")
    if not isinstance(working_days, int) or isinstance(working_days, bool):
        raise TypeError(f"working_days must be an int, got {type(working_days).__name__}")
    if working_days < 1:
        raise ValueError(f"working_days must be >= 1, got {working_days}")
    _require_closing(closing)
    _require_zone(tz)
    if not isinstance(calendar, WorkingCalendar):
        raise TypeError(f"calendar must be a WorkingCalendar, got {type(calendar).__name__}")

    local_trigger = trigger.astimezone(tz)
    day = local_trigger.date()
    counted: list[date] = []
    years: set[int] = set()
    while len(counted) < working_days:
        day += _ONE_DAY
        years.add(day.year)
        if calendar.is_working_day(day):
            counted.append(day)
    return Deadline(
        trigger=local_trigger,
        deadline=datetime.combine(counted[-1], closing, tzinfo=tz),
        working_days=tuple(counted),
        calendar_version=calendar.version_for_years(years),
        closing=closing,
    )


def working_day_offset(deadline: Deadline, days_before: int, *, calendar: WorkingCalendar | None = None) -> date:
    """The counted working day ``days_before`` working days before the deadline's last day.

    ``0`` is the last day itself, ``1`` the previous working day, and so on — e.g. a reminder
    "2 working days before". The result is taken from the deadline's recorded counted days, so it
    is always >= the first counted day; a larger ``days_before`` raises ValueError.

    If ``calendar`` is given it is cross-checked: ValueError if it no longer treats the result as a
    working day (the deadline was computed with different data, see ``calendar_version``);
    :class:`~subsidy.deadlines.CalendarNotCovered` if it lacks the year.
    """
    if not isinstance(deadline, Deadline):
        raise TypeError(f"deadline must be a Deadline, got {type(deadline).__name__}")
    if not isinstance(days_before, int) or isinstance(days_before, bool):
        raise TypeError(f"days_before must be an int, got {type(days_before).__name__}")
    if days_before < 0:
        raise ValueError(f"days_before must be >= 0, got {days_before}")
    n = len(deadline.working_days)
    if days_before >= n:
        raise ValueError(
            f"days_before={days_before} reaches before the first counted working day "
            f"{deadline.working_days[0].isoformat()} (the deadline counts {n} working day(s); max {n - 1})"
        )
    result = deadline.working_days[n - 1 - days_before]
    if calendar is not None and not calendar.is_working_day(result):
        raise ValueError(
            f"{result.isoformat()} is counted by the deadline (calendar {deadline.calendar_version}) "
            f"but is not a working day in calendar {calendar.version}"
        )
    return result


def is_on_time(received_at: datetime, deadline: Deadline) -> bool:
    """Whether ``received_at`` is no later than the deadline, to the second (inclusive).

    Fractions of a second are ignored: 18:00:00.999 counts as 18:00:00 and is on time; 18:00:01 is
    late. ``received_at`` must be timezone-aware (ValueError if naive).
    """
    _require_aware(received_at, "received_at")
    if not isinstance(deadline, Deadline):
        raise TypeError(f"deadline must be a Deadline, got {type(deadline).__name__}")
    return received_at.replace(microsecond=0) <= deadline.deadline
