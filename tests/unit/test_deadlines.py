"""Working-day deadline engine (subsidy.deadlines).

Hand-checked against the State Council schedules as held by chinese-calendar 1.11.0:

* 2025 National Day + Mid-Autumn: holidays Wed 2025-10-01 .. Wed 2025-10-08; adjusted working
  days Sun 2025-09-28 and Sat 2025-10-11.
* 2026 New Year: holidays Thu 2026-01-01 .. Sat 2026-01-03; adjusted working day Sun 2026-01-04.
* 2026 Spring Festival: holidays Sun 2026-02-15 .. Mon 2026-02-23; adjusted working days
  Sat 2026-02-14 and Sat 2026-02-28.
* The package covers 2004..2026; 2027 is not covered.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subsidy.deadlines import (
    SCHEDULE_DIR_ENV,
    CalendarNotCovered,
    Deadline,
    OfficialSchedule,
    ScheduleError,
    WorkingCalendar,
    compute_deadline,
    is_on_time,
    load_schedule_dir,
    working_day_offset,
)
from cli import deadline as cli

SH = ZoneInfo("Asia/Shanghai")
PKG = f"chinese-calendar=={chinese_calendar.__version__}"
REPO = Path(__file__).resolve().parents[2]


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=SH)


def D(s: str) -> date:
    return date.fromisoformat(s)


def days(*iso: str) -> tuple[date, ...]:
    return tuple(D(s) for s in iso)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar.from_package()


# A fictitious 2027 schedule (the real notice is not out): New Year off 01-01..01-03 and,
# to exercise adjusted working days from a file, Saturday 2027-01-09 declared a working day.
SCHEDULE_2027 = {
    "year": 2027,
    "source": "TEST FIXTURE - 国务院办公厅关于2027年部分节假日安排的通知 (国办发明电〔2026〕x号)",
    "published_on": "2026-11-10",
    "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
    "workdays": ["2027-01-09"],
}


def write_schedule(directory: Path, data: dict | str, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, indent=2)
    path = directory / (name or f"{data['year'] if isinstance(data, dict) else 'bad'}.json")
    path.write_text(text, encoding="utf-8")
    return path


def short_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


# ------------------------------------------------------------------------------ calendar facts


def test_package_range_is_probed_and_2027_is_not_covered(cal):
    assert PKG == "chinese-calendar==1.11.0"
    assert cal.package_years == frozenset(range(2004, 2027))
    assert 2027 not in cal.package_years and not cal.covers(2027)
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 1))
    assert cal.version == PKG
    assert cal.covered_years[0] == 2004 and cal.covered_years[-1] == 2026
    assert cal.coverage[2026] == PKG


@pytest.mark.parametrize(
    "day, working",
    [
        # National Day 2025
        ("2025-09-27", False),  # Sat, ordinary weekend
        ("2025-09-28", True),  # Sun, adjusted working day
        ("2025-09-30", True),
        *[(f"2025-10-0{i}", False) for i in range(1, 9)],  # holidays 10-01 .. 10-08
        ("2025-10-09", True),
        ("2025-10-11", True),  # Sat, adjusted working day
        ("2025-10-12", False),
        # New Year 2026
        ("2025-12-31", True),
        ("2026-01-01", False),
        ("2026-01-02", False),
        ("2026-01-03", False),
        ("2026-01-04", True),  # Sun, adjusted working day
        ("2026-01-05", True),
        # Spring Festival 2026
        ("2026-02-13", True),
        ("2026-02-14", True),  # Sat, adjusted working day
        *[(f"2026-02-{i}", False) for i in range(15, 24)],  # holidays 02-15 .. 02-23
        ("2026-02-24", True),
        ("2026-02-28", True),  # Sat, adjusted working day
        ("2026-03-01", False),
        ("2026-03-02", True),
    ],
)
def test_official_dates(cal, day, working):
    assert cal.is_working_day(D(day)) is working
    assert chinese_calendar.is_workday(D(day)) is working  # the package agrees


def test_is_working_day_rejects_datetime_and_uncovered_years(cal):
    with pytest.raises(TypeError):
        cal.is_working_day(sh(2026, 1, 5))  # type: ignore[arg-type]
    for year in (2003, 2027):
        with pytest.raises(CalendarNotCovered) as info:
            cal.is_working_day(date(year, 6, 1))
        assert info.value.year == year


# ------------------------------------------------------------------------------ hand-checked deadlines


def test_national_day_2025(cal):
    d = compute_deadline(sh(2025, 9, 30, 10), 5, calendar=cal)
    assert d.working_days == days("2025-10-09", "2025-10-10", "2025-10-11", "2025-10-13", "2025-10-14")
    assert d.deadline == sh(2025, 10, 14, 18)
    assert d.deadline.utcoffset() == timedelta(hours=8)
    assert d.deadline_utc == datetime(2025, 10, 14, 10, tzinfo=timezone.utc)
    assert d.calendar_version == PKG
    assert d.closing == time(18, 0)


def test_adjusted_sunday_before_national_day_counts(cal):
    d = compute_deadline(sh(2025, 9, 26, 9), 3, calendar=cal)  # Friday
    assert d.working_days == days("2025-09-28", "2025-09-29", "2025-09-30")
    assert d.deadline == sh(2025, 9, 30, 18)


def test_new_year_2026_sms_delivered_dec_30(cal):
    d = compute_deadline(sh(2025, 12, 30, 10), 5, calendar=cal)
    assert d.working_days == days("2025-12-31", "2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07")
    assert D("2026-01-04") in d.working_days  # the adjusted Sunday counts
    assert d.deadline == sh(2026, 1, 7, 18)
    assert d.deadline.isoformat() == "2026-01-07T18:00:00+08:00"


def test_spring_festival_2026(cal):
    d = compute_deadline(sh(2026, 2, 12, 15), 5, calendar=cal)
    assert d.working_days == days("2026-02-13", "2026-02-14", "2026-02-24", "2026-02-25", "2026-02-26")
    assert d.deadline == sh(2026, 2, 26, 18)

    d2 = compute_deadline(sh(2026, 2, 24, 9), 5, calendar=cal)
    assert d2.working_days == days("2026-02-25", "2026-02-26", "2026-02-27", "2026-02-28", "2026-03-02")
    assert d2.deadline == sh(2026, 3, 2, 18)


def test_event_late_at_night_on_a_holiday(cal):
    d = compute_deadline(sh(2025, 10, 3, 23, 30), 3, calendar=cal)
    assert d.working_days == days("2025-10-09", "2025-10-10", "2025-10-11")
    assert d.deadline == sh(2025, 10, 11, 18)  # a Saturday, adjusted working day
    # Last holiday, late evening: counting starts on the next working day.
    assert compute_deadline(sh(2025, 10, 8, 23, 30), 1, calendar=cal).working_days == days("2025-10-09")


def test_event_after_closing_time_on_a_working_day(cal):
    late = compute_deadline(sh(2026, 3, 3, 19, 30), 2, calendar=cal)  # Tuesday, after 18:00
    early = compute_deadline(sh(2026, 3, 3, 9, 0), 2, calendar=cal)
    assert late.working_days == early.working_days == days("2026-03-04", "2026-03-05")
    assert late.deadline == sh(2026, 3, 5, 18)


def test_event_on_adjusted_sunday_is_not_counted(cal):
    d = compute_deadline(sh(2026, 1, 4, 10), 1, calendar=cal)
    assert d.working_days == days("2026-01-05")


def test_trigger_date_is_taken_in_shanghai_time(cal):
    # 2025-12-30 17:00 UTC is 2025-12-31 01:00 in Shanghai: 12-31 is the event day, not counted.
    d = compute_deadline(datetime(2025, 12, 30, 17, tzinfo=timezone.utc), 1, calendar=cal)
    assert d.trigger == sh(2025, 12, 31, 1)
    assert d.trigger.utcoffset() == timedelta(hours=8)
    assert d.working_days == days("2026-01-04")
    assert d.deadline == sh(2026, 1, 4, 18)


def test_custom_closing_time(cal):
    d = compute_deadline(sh(2025, 12, 30, 10), 1, calendar=cal, closing=time(17, 30))
    assert d.deadline == sh(2025, 12, 31, 17, 30)
    assert d.to_json_dict()["closing"] == "17:30"


# ------------------------------------------------------------------------------ coverage and schedules


def test_2027_without_schedule_raises_not_covered(cal):
    # Up to 2026-12-31 is fine without 2027 data ...
    ok = compute_deadline(sh(2026, 12, 28, 10), 3, calendar=cal)
    assert ok.working_days == days("2026-12-29", "2026-12-30", "2026-12-31")
    # ... one more working day needs 2027.
    with pytest.raises(CalendarNotCovered) as info:
        compute_deadline(sh(2026, 12, 28, 10), 10, calendar=cal)
    assert info.value.year == 2027
    message = str(info.value)
    assert "2027" in message and "schedule" in message and SCHEDULE_DIR_ENV in message
    assert isinstance(info.value, LookupError)
    # Triggered on the last day of the year: the first day to examine is already in 2027.
    with pytest.raises(CalendarNotCovered):
        compute_deadline(sh(2026, 12, 31, 20), 1, calendar=cal)


def test_2027_with_schedule_file(tmp_path):
    path = write_schedule(tmp_path, SCHEDULE_2027)
    cal = WorkingCalendar.from_schedules(tmp_path)
    assert cal.covers(2027) and cal.schedule_years == frozenset({2027})
    tag = f"schedule:2027@sha256:{short_sha(path)}"
    assert cal.version == f"{PKG}+{tag}"

    d = compute_deadline(sh(2026, 12, 28, 10), 10, calendar=cal)
    assert d.working_days == days(
        "2026-12-29", "2026-12-30", "2026-12-31",
        "2027-01-04", "2027-01-05", "2027-01-06", "2027-01-07", "2027-01-08",
        "2027-01-09",  # Saturday, adjusted working day in the file
        "2027-01-11",
    )  # fmt: skip
    assert d.deadline == sh(2027, 1, 11, 18)
    assert d.calendar_version == f"{PKG}+{tag}"
    assert "schedule:2027" in d.calendar_version

    # A deadline that never looks at 2027 does not name the 2027 file.
    assert compute_deadline(sh(2026, 12, 28, 10), 3, calendar=cal).calendar_version == PKG
    # 2028 is still not covered.
    with pytest.raises(CalendarNotCovered) as info:
        cal.is_working_day(date(2028, 1, 3))
    assert info.value.year == 2028


def test_schedule_file_overrides_package_year(tmp_path):
    # Fictitious correction for 2026: Monday 2026-01-05 also off.
    data = {
        "year": 2026,
        "source": "TEST FIXTURE correction",
        "published_on": "2025-11-04",
        "holidays": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05"],
        "workdays": ["2026-01-04"],
    }
    path = write_schedule(tmp_path, data)
    cal = WorkingCalendar.from_schedules(tmp_path)
    d = compute_deadline(sh(2025, 12, 30, 10), 5, calendar=cal)
    assert d.working_days == days("2025-12-31", "2026-01-04", "2026-01-06", "2026-01-07", "2026-01-08")
    assert d.calendar_version == f"{PKG}+schedule:2026@sha256:{short_sha(path)}"
    assert cal.is_working_day(D("2026-02-16"))  # the file replaces the package for the whole year
    assert cal.coverage[2026].startswith("schedule:2026@sha256:")


def test_default_calendar_reads_env_var_only_when_loading(tmp_path, monkeypatch):
    monkeypatch.delenv(SCHEDULE_DIR_ENV, raising=False)
    packaged = WorkingCalendar.default()
    assert not packaged.covers(2027)
    assert packaged.version == PKG  # no schedule shipped in the package directory

    write_schedule(tmp_path, SCHEDULE_2027)
    monkeypatch.setenv(SCHEDULE_DIR_ENV, str(tmp_path))
    assert WorkingCalendar.default().covers(2027)

    monkeypatch.setenv(SCHEDULE_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(ScheduleError, match="does not exist"):
        WorkingCalendar.default()


def test_parse_without_io_gives_same_version_as_file(tmp_path):
    path = write_schedule(tmp_path, SCHEDULE_2027)
    from_file = WorkingCalendar.from_schedules(tmp_path)
    in_memory = WorkingCalendar(schedules=(OfficialSchedule.parse(path.read_bytes(), origin="2027.json"),))
    assert in_memory.version == from_file.version


def _bad(**changes):
    data = dict(SCHEDULE_2027)
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('{"year": 2027, "holidays": [', "not valid JSON"),
        ("[]", "JSON object"),
        (_bad(source=...), "missing key(s): source"),
        (_bad(holiday=["2027-01-01"]), "unknown key(s): holiday"),
        (_bad(year="2027"), '"year" must be an integer'),
        (_bad(holidays=["2027-01-01", "2028-01-02"]), "2028-01-02 is not in year 2027"),
        (_bad(holidays=["2027-02-30"]), "not a valid date"),
        (_bad(holidays=["2027/01/01"]), "YYYY-MM-DD"),
        (_bad(holidays=["2027-01-01", "2027-01-01"]), "twice"),
        (_bad(holidays=["2027-01-01", "2027-01-09"]), "both as holiday and as workday: 2027-01-09"),
        (_bad(workdays=["2027-01-05"]), "Saturday or Sunday"),
        (_bad(holidays=[]), "empty"),
        (_bad(published_on="soon"), "published_on"),
        (_bad(source=""), "source"),
    ],
)
def test_malformed_schedule_file_is_rejected_clearly(tmp_path, content, fragment):
    path = write_schedule(tmp_path, content if isinstance(content, str) else json.dumps(content), name="2027.json")
    with pytest.raises(ScheduleError) as info:
        WorkingCalendar.from_schedules(tmp_path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message and "invalid calendar schedule" in message
    assert isinstance(info.value, ValueError)


def test_two_files_for_one_year_and_missing_dir(tmp_path):
    write_schedule(tmp_path, SCHEDULE_2027, name="2027.json")
    write_schedule(tmp_path, SCHEDULE_2027, name="2027-copy.json")
    (tmp_path / "README.md").write_text("ignored")
    with pytest.raises(ScheduleError, match="already defined"):
        load_schedule_dir(tmp_path)
    with pytest.raises(ScheduleError, match="does not exist"):
        WorkingCalendar.from_schedules(tmp_path / "nope")


# ------------------------------------------------------------------------------ validation, on-time, offsets


def test_naive_datetimes_rejected(cal):
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_deadline(datetime(2025, 12, 30, 10), 5, calendar=cal)
    d = compute_deadline(sh(2025, 12, 30, 10), 5, calendar=cal)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_on_time(datetime(2026, 1, 7, 17, 59), d)


@pytest.mark.parametrize("n", [0, -1, -10])
def test_working_days_must_be_at_least_one(cal, n):
    with pytest.raises(ValueError, match=">= 1"):
        compute_deadline(sh(2025, 12, 30, 10), n, calendar=cal)


def test_other_argument_errors(cal):
    with pytest.raises(TypeError):
        compute_deadline(sh(2025, 12, 30, 10), True, calendar=cal)
    with pytest.raises(TypeError):
        compute_deadline(sh(2025, 12, 30, 10), 2.0, calendar=cal)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive wall-clock"):
        compute_deadline(sh(2025, 12, 30, 10), 2, calendar=cal, closing=time(18, tzinfo=timezone.utc))
    with pytest.raises(TypeError):
        compute_deadline(sh(2025, 12, 30, 10), 2, calendar=cal, tz=timezone(timedelta(hours=8)))  # type: ignore[arg-type]


def test_is_on_time_boundaries(cal):
    d = compute_deadline(sh(2025, 12, 30, 10), 5, calendar=cal)
    assert is_on_time(sh(2026, 1, 7, 17, 59), d)
    assert is_on_time(sh(2026, 1, 7, 18, 0, 0), d)
    assert is_on_time(sh(2026, 1, 7, 18, 0, 0, 999_999), d)  # same second
    assert not is_on_time(sh(2026, 1, 7, 18, 0, 1), d)
    assert not is_on_time(sh(2026, 1, 7, 18, 1), d)
    assert is_on_time(datetime(2026, 1, 7, 10, 0, tzinfo=timezone.utc), d)  # 18:00 in Shanghai
    assert not is_on_time(datetime(2026, 1, 7, 10, 1, tzinfo=timezone.utc), d)


def test_working_day_offset(cal):
    d = compute_deadline(sh(2025, 12, 30, 10), 5, calendar=cal)
    assert working_day_offset(d, 0, calendar=cal) == D("2026-01-07")
    assert working_day_offset(d, 2, calendar=cal) == D("2026-01-05")
    assert working_day_offset(d, 3, calendar=cal) == D("2026-01-04")  # adjusted Sunday
    assert working_day_offset(d, 4, calendar=cal) == D("2025-12-31")  # first counted day
    with pytest.raises(ValueError, match="before the first counted working day"):
        working_day_offset(d, 5, calendar=cal)
    with pytest.raises(ValueError):
        working_day_offset(d, -1, calendar=cal)

    nd = compute_deadline(sh(2025, 9, 30, 10), 5, calendar=cal)
    assert working_day_offset(nd, 2, calendar=cal) == D("2025-10-11")  # skips Sunday 10-12


def test_working_day_offset_detects_changed_calendar(cal, tmp_path):
    d = compute_deadline(sh(2025, 12, 30, 10), 5, calendar=cal)
    data = {
        "year": 2026,
        "source": "TEST FIXTURE correction",
        "published_on": "2025-11-04",
        "holidays": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05"],
        "workdays": ["2026-01-04"],
    }
    write_schedule(tmp_path, data)
    changed = WorkingCalendar.from_schedules(tmp_path)
    with pytest.raises(ValueError, match="not a working day"):
        working_day_offset(d, 2, calendar=changed)


# ------------------------------------------------------------------------------ JSON


def test_json_round_trip(cal):
    d = compute_deadline(datetime(2025, 12, 30, 2, tzinfo=timezone.utc), 5, calendar=cal)
    payload = d.to_json_dict()
    assert payload == {
        "trigger": "2025-12-30T10:00:00+08:00",
        "deadline": "2026-01-07T18:00:00+08:00",
        "deadline_utc": "2026-01-07T10:00:00Z",
        "timezone": "Asia/Shanghai",
        "working_days": ["2025-12-31", "2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"],
        "calendar_version": PKG,
        "closing": "18:00",
    }
    back = Deadline.from_json_dict(json.loads(json.dumps(payload)))
    assert back == d
    assert back.deadline.tzinfo == SH and back.trigger.tzinfo == SH
    assert back.to_json_dict() == payload


@pytest.mark.parametrize(
    "change",
    [
        {"deadline": "2026-01-07T18:00:00"},  # naive
        {"deadline": "2026-01-08T18:00:00+08:00"},  # not the last counted day
        {"deadline": "2026-01-07T10:00:00+00:00"},  # not the +08:00 offset
        {"working_days": ["2026-13-01"]},
        {"closing": "6pm"},
        {"timezone": "Mars/Olympus"},
        {"deadline_utc": "2026-01-07T11:00:00Z"},
    ],
)
def test_json_rejects_inconsistent_payload(cal, change):
    payload = compute_deadline(sh(2025, 12, 30, 10), 5, calendar=cal).to_json_dict()
    payload.update(change)
    with pytest.raises(ValueError):
        Deadline.from_json_dict(payload)


# ------------------------------------------------------------------------------ property test

_ZONES = st.sampled_from([SH, timezone.utc, timezone(timedelta(hours=-7)), timezone(timedelta(hours=14))])
_PROPERTY_CAL = WorkingCalendar.from_package()


@settings(max_examples=400, deadline=None)
@given(
    trigger=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31, 23, 59, 59), timezones=_ZONES),
    n=st.integers(min_value=1, max_value=15),
)
def test_property_deadline(trigger, n):
    start = trigger.astimezone(SH).date()
    try:
        d = compute_deadline(trigger, n, calendar=_PROPERTY_CAL)
    except CalendarNotCovered as exc:
        # Only when fewer than n working days remain in 2026 after the trigger's local date.
        assert exc.year == 2027
        remaining = [
            start + timedelta(days=i)
            for i in range(1, (date(2026, 12, 31) - start).days + 1)
            if chinese_calendar.is_workday(start + timedelta(days=i))
        ]
        assert len(remaining) < n
        return
    counted = d.working_days
    assert len(counted) == n
    assert d.deadline.date() == counted[-1] and d.deadline.timetz().replace(tzinfo=None) == time(18, 0)
    assert d.deadline.utcoffset() == timedelta(hours=8)
    assert all(chinese_calendar.is_workday(x) for x in counted)  # independent oracle
    assert counted[0] > start
    assert list(counted) == sorted(set(counted))
    # No working day between the trigger date and the deadline is skipped.
    between = [
        start + timedelta(days=i)
        for i in range(1, (counted[-1] - start).days + 1)
        if chinese_calendar.is_workday(start + timedelta(days=i))
    ]
    assert between == list(counted)
    assert is_on_time(d.deadline, d) and not is_on_time(d.deadline + timedelta(seconds=1), d)
    assert Deadline.from_json_dict(d.to_json_dict()) == d


# ------------------------------------------------------------------------------ CLI


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="subsidy")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(sub)
    return parser.parse_args(["deadline", *argv])


def test_cli_subprocess_new_year():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cli.deadline import main; sys.exit(main(sys.argv[1:]))",
            "deadline",
            "--from",
            "2025-12-30T10:00:00+08:00",
            "--working-days",
            "5",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["trigger"] == "2025-12-30T10:00:00+08:00"
    assert out["deadline"] == "2026-01-07T18:00:00+08:00"
    assert out["working_days"] == ["2025-12-31", "2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"]
    assert out["calendar_version"] == PKG
    assert out["closing"] == "18:00"


def test_cli_run_direct(capsys, tmp_path):
    args = _args("--from", "2025-10-03T23:30:00+08:00", "--working-days", "3", "--closing", "17:00")
    assert args.func is cli.run
    assert cli.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deadline"] == "2025-10-11T17:00:00+08:00"
    assert out["closing"] == "17:00"

    write_schedule(tmp_path, SCHEDULE_2027)
    args = _args("--from", "2026-12-28T10:00:00Z", "--working-days", "10", "--calendar-dir", str(tmp_path))
    assert cli.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trigger"] == "2026-12-28T18:00:00+08:00"
    assert out["deadline"] == "2027-01-11T18:00:00+08:00"
    assert "+schedule:2027@sha256:" in out["calendar_version"]


@pytest.mark.parametrize(
    "argv, code, fragment",
    [
        (["--from", "2025-12-30T10:00:00", "--working-days", "5"], 2, "UTC offset"),
        (["--from", "next tuesday", "--working-days", "5"], 2, "RFC 3339"),
        (["--from", "2025-02-30T10:00:00+08:00", "--working-days", "5"], 2, "not a valid timestamp"),
        (["--from", "2025-12-30T10:00:00+08:00", "--working-days", "0"], 2, ">= 1"),
        (["--from", "2025-12-30T10:00:00+08:00", "--working-days", "five"], 2, "integer"),
        (["--from", "2025-12-30T10:00:00+08:00", "--working-days", "5", "--closing", "25:00"], 2, "--closing"),
        (["--from", "2026-12-28T10:00:00+08:00", "--working-days", "10"], 3, "year 2027"),
    ],
)
def test_cli_errors(capsys, monkeypatch, argv, code, fragment):
    monkeypatch.delenv(SCHEDULE_DIR_ENV, raising=False)
    assert cli.run(_args(*argv)) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_cli_bad_schedule_dir(capsys, tmp_path):
    write_schedule(tmp_path, "{oops", name="2027.json")
    assert cli.run(_args("--from", "2025-12-30T10:00:00+08:00", "--working-days", "1", "--calendar-dir", str(tmp_path))) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid calendar schedule") and "2027.json" in err
