"""``subsidy deadline`` subcommand: compute a working-day deadline and print it as JSON.

    subsidy deadline --from 2025-12-30T10:00:00+08:00 --working-days 5 [--closing 18:00] [--calendar-dir DIR]

Exit codes: 0 success (JSON on stdout); 2 bad input or invalid schedule files (one ``error: ...``
line on stderr); 3 the computation needs a year with no official calendar data.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime

from subsidy.deadlines.calendar import CalendarNotCovered, ScheduleError, WorkingCalendar
from subsidy.deadlines.engine import compute_deadline, parse_closing

__all__ = ["EXIT_OK", "EXIT_BAD_INPUT", "EXIT_NOT_COVERED", "add_parser", "run", "main"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NOT_COVERED = 3

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``deadline`` subcommand; sets ``func=run`` as its default."""
    parser = subparsers.add_parser(
        "deadline",
        help="compute an N-working-day deadline (Chinese official calendar)",
        description=(
            "Compute the deadline N working days after an event. The event's local date "
            "(Asia/Shanghai) is not counted; holidays are skipped, adjusted working days count; "
            "the deadline is the closing time of the N-th counted working day."
        ),
    )
    parser.add_argument(
        "--from",
        dest="trigger",
        required=True,
        metavar="RFC3339",
        help="triggering event time with a UTC offset, e.g. 2025-12-30T10:00:00+08:00",
    )
    parser.add_argument("--working-days", dest="working_days", required=True, metavar="N", help="integer >= 1")
    parser.add_argument("--closing", default="18:00", metavar="HH:MM", help="office closing time (default 18:00)")
    parser.add_argument(
        "--calendar-dir",
        dest="calendar_dir",
        default=None,
        metavar="DIR",
        help="directory of official schedule files (default: $SUBSIDY_CALENDAR_DIR or the packaged one)",
    )
    parser.set_defaults(func=run)
    return parser


def _error(message: str, code: int) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return code


def _parse_trigger(text: str) -> datetime:
    match = _RFC3339.match(text or "")
    if not match:
        raise ValueError(f"--from must be an RFC 3339 timestamp such as 2025-12-30T10:00:00+08:00, got {text!r}")
    if match.group("offset") is None:
        raise ValueError(f"--from must include a UTC offset (e.g. +08:00 or Z), got {text!r}")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--from is not a valid timestamp: {text!r} ({exc})") from None


def _parse_working_days(text: str) -> int:
    value = str(text).strip()
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ValueError(f"--working-days must be an integer >= 1, got {text!r}")
    n = int(value)
    if n < 1:
        raise ValueError(f"--working-days must be >= 1, got {n}")
    return n


def run(args: argparse.Namespace) -> int:
    """Execute the ``deadline`` subcommand for parsed ``args``; returns the exit code."""
    try:
        trigger = _parse_trigger(args.trigger)
        n = _parse_working_days(args.working_days)
    except ValueError as exc:
        return _error(str(exc), EXIT_BAD_INPUT)
    try:
        closing = parse_closing(args.closing)
    except ValueError:
        return _error(f"--closing must be HH:MM (24-hour), got {args.closing!r}", EXIT_BAD_INPUT)
    try:
        if args.calendar_dir:
            calendar = WorkingCalendar.from_schedules(args.calendar_dir)
        else:
            calendar = WorkingCalendar.default()
    except ScheduleError as exc:
        return _error(str(exc), EXIT_BAD_INPUT)
    try:
        deadline = compute_deadline(trigger, n, calendar=calendar, closing=closing)
    except CalendarNotCovered as exc:
        return _error(str(exc), EXIT_NOT_COVERED)
    except (ValueError, TypeError) as exc:
        return _error(str(exc), EXIT_BAD_INPUT)
    print(json.dumps(deadline.to_json_dict(), ensure_ascii=False))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``main(["deadline", "--from", ..., "--working-days", "5"])``."""
    parser = argparse.ArgumentParser(prog="subsidy")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
