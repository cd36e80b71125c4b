"""Official Chinese working-day calendar: package data plus operator-loaded State Council schedules.

Two sources, never a guess:

* the ``chinese-calendar`` package, for the years it covers (its range is probed, not hard-coded);
* official schedules an operator loads, one JSON file per year, taken from the State Council
  notice (国务院办公厅关于YYYY年部分节假日安排的通知). A loaded file for a year overrides the
  package for that year.

A year covered by neither raises :class:`CalendarNotCovered` — there is no weekends-only fallback.

Determinism (Temporal): building a calendar from the package (:meth:`WorkingCalendar.from_package`)
or from already-read schedule content (``WorkingCalendar(schedules=...)`` with
:meth:`OfficialSchedule.parse`) does no I/O. Only :func:`load_schedule_dir`,
:func:`default_schedule_dir`, :meth:`WorkingCalendar.default` and
:meth:`WorkingCalendar.from_schedules` touch the file system or the environment; call them outside
workflow code (worker start-up, an activity, the CLI) and hand the result in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "SCHEDULE_DIR_ENV",
    "PACKAGE_SCHEDULE_DIR",
    "CalendarError",
    "CalendarNotCovered",
    "ScheduleError",
    "OfficialSchedule",
    "WorkingCalendar",
    "default_schedule_dir",
    "load_schedule_dir",
]

#: Environment variable naming the directory of operator schedule files. Read only by
#: :func:`default_schedule_dir` (hence by :meth:`WorkingCalendar.default`), never at import time.
SCHEDULE_DIR_ENV = "SUBSIDY_CALENDAR_DIR"

#: Schedule directory shipped inside the package (``subsidy/deadlines/schedules/``).
PACKAGE_SCHEDULE_DIR = Path(__file__).parent / "schedules"  # no resolve(): restricted in the Temporal sandbox

_HASH_CHARS = 12
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REQUIRED_KEYS = ("year", "source", "published_on", "holidays", "workdays")
_OPTIONAL_KEYS = ("notes",)


# --------------------------------------------------------------------------------------- errors


class CalendarError(Exception):
    """Base class of calendar errors."""


class CalendarNotCovered(CalendarError, LookupError):
    """No official working-day data for ``year``.

    Raised by :meth:`WorkingCalendar.is_working_day` (and therefore by every engine function that
    consults the calendar, e.g. :func:`subsidy.deadlines.compute_deadline`). Callers should catch
    it, raise an operator alert carrying ``exc.year``, and fail the computation — the library never
    emits events itself and never falls back to a weekends-only answer.
    """

    def __init__(self, year: int, *, covered_years: Iterable[int] = (), package: str | None = None):
        self.year = int(year)
        self.covered_years: tuple[int, ...] = tuple(sorted(set(covered_years)))
        self.package = package
        super().__init__(self._message())

    def _message(self) -> str:
        covered = _describe_years(self.covered_years) or "none"
        return (
            f"no official working-day calendar for year {self.year} "
            f"(covered years: {covered}). Load the State Council holiday schedule for {self.year}: "
            f"add {self.year}.json to subsidy/deadlines/schedules/ or to the directory named by "
            f"${SCHEDULE_DIR_ENV} (format: subsidy/deadlines/schedules/README.md), "
            f"or upgrade the chinese-calendar package"
        )

    def __reduce__(self):  # keep pickling (e.g. across process pools) working with kw-only args
        return (_rebuild_not_covered, (self.year, self.covered_years, self.package))


def _rebuild_not_covered(year: int, covered: tuple[int, ...], package: str | None) -> CalendarNotCovered:
    return CalendarNotCovered(year, covered_years=covered, package=package)


class ScheduleError(CalendarError, ValueError):
    """An operator schedule file (or directory) is invalid. ``origin`` names the file."""

    def __init__(self, origin: str, problem: str):
        self.origin = origin
        self.problem = problem
        super().__init__(f"invalid calendar schedule {origin}: {problem}")


def _describe_years(years: Iterable[int]) -> str:
    """``[2004..2026, 2028]`` -> ``"2004-2026, 2028"``."""
    ys = sorted(set(years))
    parts: list[str] = []
    i = 0
    while i < len(ys):
        j = i
        while j + 1 < len(ys) and ys[j + 1] == ys[j] + 1:
            j += 1
        parts.append(str(ys[i]) if i == j else f"{ys[i]}-{ys[j]}")
        i = j + 1
    return ", ".join(parts)


# ----------------------------------------------------------------------------- package data


@dataclass(frozen=True)
class _PackageData:
    version: str  # "chinese-calendar==1.11.0"
    years: frozenset[int]
    is_workday: Any  # chinese_calendar.is_workday


_PACKAGE: _PackageData | None = None
_PACKAGE_PROBED = False
_PROBE_YEARS = range(1900, 2201)


def _package_data() -> _PackageData | None:
    """The ``chinese-calendar`` package and the years it supports (probed once, no file I/O).

    The package signals an unsupported year by raising ``NotImplementedError``; the supported set is
    found by asking it about 1 January of every year in 1900..2200.
    """
    global _PACKAGE, _PACKAGE_PROBED
    if _PACKAGE_PROBED:
        return _PACKAGE
    try:
        import chinese_calendar
    except ImportError:  # pragma: no cover - it is a declared dependency
        _PACKAGE, _PACKAGE_PROBED = None, True
        return None
    years: set[int] = set()
    for y in _PROBE_YEARS:
        try:
            chinese_calendar.is_workday(date(y, 1, 1))
        except NotImplementedError:
            continue
        years.add(y)
    version = getattr(chinese_calendar, "__version__", "unknown")
    _PACKAGE = _PackageData(f"chinese-calendar=={version}", frozenset(years), chinese_calendar.is_workday)
    _PACKAGE_PROBED = True
    return _PACKAGE


# ------------------------------------------------------------------------- operator schedules


@dataclass(frozen=True)
class OfficialSchedule:
    """One year's official holiday schedule, as loaded from an operator file.

    ``holidays`` are days off (including weekend days inside a holiday block); ``workdays`` are the
    adjusted working days (调休上班), always a Saturday or Sunday. Every other Monday-Friday is a
    working day and every other Saturday/Sunday is not.
    """

    year: int
    source: str
    published_on: date
    holidays: frozenset[date]
    workdays: frozenset[date]
    sha256: str  # hex digest of the file's bytes
    origin: str = "<memory>"
    notes: str | None = None

    @property
    def tag(self) -> str:
        """Version component, e.g. ``schedule:2027@sha256:0123456789ab``."""
        return f"schedule:{self.year}@sha256:{self.sha256[:_HASH_CHARS]}"

    def is_working_day(self, d: date) -> bool:
        if d.year != self.year:
            raise ValueError(f"{d.isoformat()} is not in schedule year {self.year}")
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    @classmethod
    def parse(cls, raw: bytes | str, *, origin: str = "<memory>") -> OfficialSchedule:
        """Parse and validate the content of one schedule file. Pure: no I/O.

        ``sha256`` is computed over ``raw`` (UTF-8 encoded if ``str``), so the version tag of a
        schedule read by an activity and parsed in a workflow equals that of the file on disk.

        Raises :class:`ScheduleError` with a message naming ``origin`` and the problem.
        """
        data_bytes = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        digest = hashlib.sha256(data_bytes).hexdigest()
        try:
            text = data_bytes.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ScheduleError(origin, f"not UTF-8 text ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScheduleError(origin, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        if not isinstance(data, dict):
            raise ScheduleError(origin, "top level must be a JSON object")

        missing = [k for k in _REQUIRED_KEYS if k not in data]
        if missing:
            raise ScheduleError(origin, f"missing key(s): {', '.join(missing)}")
        unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
        if unknown:
            allowed = ", ".join(_REQUIRED_KEYS + _OPTIONAL_KEYS)
            raise ScheduleError(origin, f"unknown key(s): {', '.join(unknown)} (allowed: {allowed})")

        year = data["year"]
        if not isinstance(year, int) or isinstance(year, bool) or not 1949 <= year <= 9998:
            raise ScheduleError(origin, f'"year" must be an integer year, got {year!r}')
        source = data["source"]
        if not isinstance(source, str) or not source.strip():
            raise ScheduleError(origin, '"source" must be a non-empty string naming the official notice')
        published_on = _parse_date(data["published_on"], origin, '"published_on"')
        notes = data.get("notes")
        if notes is not None and not isinstance(notes, str):
            raise ScheduleError(origin, '"notes" must be a string')

        holidays = _parse_date_list(data["holidays"], origin, "holidays", year)
        workdays = _parse_date_list(data["workdays"], origin, "workdays", year)
        if not holidays:
            raise ScheduleError(origin, f'"holidays" is empty; every year has statutory holidays ({year}-01-01 at least)')
        both = sorted(holidays & workdays)
        if both:
            raise ScheduleError(
                origin, f"date(s) listed both as holiday and as workday: {', '.join(d.isoformat() for d in both)}"
            )
        weekday_workdays = sorted(d for d in workdays if d.weekday() < 5)
        if weekday_workdays:
            listed = ", ".join(f"{d.isoformat()} ({d.strftime('%A')})" for d in weekday_workdays)
            raise ScheduleError(
                origin,
                f'"workdays" must only list adjusted working days falling on a Saturday or Sunday; '
                f"already a weekday: {listed}",
            )
        return cls(
            year=year,
            source=source.strip(),
            published_on=published_on,
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            sha256=digest,
            origin=origin,
            notes=notes,
        )


def _parse_date(value: Any, origin: str, what: str) -> date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ScheduleError(origin, f"{what} must be a YYYY-MM-DD string, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ScheduleError(origin, f"{what} is not a valid date: {value!r} ({exc})") from None


def _parse_date_list(value: Any, origin: str, key: str, year: int) -> set[date]:
    if not isinstance(value, list):
        raise ScheduleError(origin, f'"{key}" must be a list of YYYY-MM-DD strings')
    out: set[date] = set()
    for i, item in enumerate(value):
        d = _parse_date(item, origin, f'"{key}"[{i}]')
        if d.year != year:
            raise ScheduleError(origin, f'"{key}"[{i}] = {item} is not in year {year}')
        if d in out:
            raise ScheduleError(origin, f'"{key}" lists {item} twice')
        out.add(d)
    return out


def default_schedule_dir() -> Path:
    """The operator schedule directory: ``$SUBSIDY_CALENDAR_DIR`` if set, else the package's own.

    This is the only place the environment variable is read.
    """
    configured = os.environ.get(SCHEDULE_DIR_ENV, "").strip()
    return Path(configured) if configured else PACKAGE_SCHEDULE_DIR


def load_schedule_dir(directory: str | os.PathLike[str], *, missing_ok: bool = False) -> tuple[OfficialSchedule, ...]:
    """Read and validate every ``*.json`` file directly in ``directory`` (hidden files skipped).

    Non-JSON files (e.g. the README) are ignored. Two files for the same year are an error.
    A missing directory is an error unless ``missing_ok``. Returns schedules sorted by year.
    """
    path = Path(directory)
    if not path.exists():
        if missing_ok:
            return ()
        raise ScheduleError(str(path), "directory does not exist")
    if not path.is_dir():
        raise ScheduleError(str(path), "not a directory")
    by_year: dict[int, OfficialSchedule] = {}
    for file in sorted(path.iterdir()):
        if file.name.startswith(".") or file.suffix.lower() != ".json" or not file.is_file():
            continue
        schedule = OfficialSchedule.parse(file.read_bytes(), origin=str(file))
        if schedule.year in by_year:
            raise ScheduleError(
                str(file), f"year {schedule.year} is already defined by {by_year[schedule.year].origin}"
            )
        by_year[schedule.year] = schedule
    return tuple(by_year[y] for y in sorted(by_year))


# ----------------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class WorkingCalendar:
    """Working-day calendar: package data (if ``include_package``) overridden per year by ``schedules``.

    Immutable and pure once built. Construct with :meth:`default`, :meth:`from_schedules`,
    :meth:`from_package`, or directly with already-parsed schedules.
    """

    schedules: tuple[OfficialSchedule, ...] = ()
    include_package: bool = True
    _by_year: Mapping[int, OfficialSchedule] = field(init=False, repr=False, compare=False)
    _package: _PackageData | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schedules = tuple(self.schedules)
        by_year: dict[int, OfficialSchedule] = {}
        for s in schedules:
            if not isinstance(s, OfficialSchedule):
                raise TypeError(f"schedules must be OfficialSchedule instances, got {type(s).__name__}")
            if s.year in by_year:
                raise ScheduleError(s.origin, f"year {s.year} is already defined by {by_year[s.year].origin}")
            by_year[s.year] = s
        object.__setattr__(self, "schedules", tuple(by_year[y] for y in sorted(by_year)))
        object.__setattr__(self, "_by_year", MappingProxyType(by_year))
        object.__setattr__(self, "_package", _package_data() if self.include_package else None)

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_package(cls) -> WorkingCalendar:
        """Package data only. No file or environment access — safe inside a workflow."""
        return cls()

    @classmethod
    def from_schedules(cls, directory: str | os.PathLike[str], *, include_package: bool = True) -> WorkingCalendar:
        """Package data overridden by the schedule files in ``directory`` (which must exist)."""
        return cls(schedules=load_schedule_dir(directory), include_package=include_package)

    @classmethod
    def default(cls) -> WorkingCalendar:
        """Package data overridden by the schedules in :func:`default_schedule_dir`.

        If ``$SUBSIDY_CALENDAR_DIR`` is set, that directory must exist; the package's own
        directory may be absent.
        """
        directory = default_schedule_dir()
        missing_ok = directory == PACKAGE_SCHEDULE_DIR
        return cls(schedules=load_schedule_dir(directory, missing_ok=missing_ok))

    # -- coverage -----------------------------------------------------------------------------

    @property
    def package_version(self) -> str | None:
        """``"chinese-calendar==1.11.0"``, or ``None`` if package data is not used."""
        return self._package.version if self._package else None

    @property
    def package_years(self) -> frozenset[int]:
        return self._package.years if self._package else frozenset()

    @property
    def schedule_years(self) -> frozenset[int]:
        return frozenset(self._by_year)

    @property
    def covered_years(self) -> tuple[int, ...]:
        """Every year with official data, sorted."""
        return tuple(sorted(self.package_years | self.schedule_years))

    @property
    def coverage(self) -> Mapping[int, str]:
        """Year -> the data source used for it (package version or schedule tag)."""
        out = {y: self._package.version for y in self.package_years} if self._package else {}
        out.update({y: s.tag for y, s in self._by_year.items()})
        return MappingProxyType(dict(sorted(out.items())))

    def covers(self, year: int) -> bool:
        return year in self._by_year or year in self.package_years

    def require_year(self, year: int) -> None:
        """Raise :class:`CalendarNotCovered` if ``year`` has no official data."""
        if not self.covers(year):
            raise CalendarNotCovered(year, covered_years=self.covered_years, package=self.package_version)

    def schedule_for(self, year: int) -> OfficialSchedule | None:
        return self._by_year.get(year)

    # -- queries ------------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """Whether ``d`` is a working day (adjusted weekend workdays count, holidays do not).

        Raises :class:`CalendarNotCovered` (with ``.year``) if ``d``'s year has no official data.
        """
        if isinstance(d, datetime) or not isinstance(d, date):
            raise TypeError(f"is_working_day expects a datetime.date (a local calendar date), got {type(d).__name__}")
        schedule = self._by_year.get(d.year)
        if schedule is not None:
            return schedule.is_working_day(d)
        if self._package is not None and d.year in self._package.years:
            return bool(self._package.is_workday(d))
        raise CalendarNotCovered(d.year, covered_years=self.covered_years, package=self.package_version)

    # -- versions -----------------------------------------------------------------------------

    @property
    def _base_version(self) -> str:
        return self._package.version if self._package else "no-package"

    @property
    def version(self) -> str:
        """Identifies all data loaded, e.g. ``chinese-calendar==1.11.0+schedule:2027@sha256:…``."""
        return "+".join([self._base_version, *(s.tag for s in self.schedules)])

    def version_for_years(self, years: Iterable[int]) -> str:
        """Version naming the package plus the schedule files actually consulted for ``years``."""
        tags = [self._by_year[y].tag for y in sorted(set(years)) if y in self._by_year]
        return "+".join([self._base_version, *tags])
