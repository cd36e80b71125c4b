"""``subsidy retention run``: erase personal data a configured time after a program batch closes.

    subsidy retention run [--now 2026-12-01T00:00:00+08:00] [--dry-run] [--actor operator:NAME]

For each program whose `[retention]` says its batch closed (`batch_closed_at`) at least
`erase_personal_data_after_days` ago: intake's sealed ID and mobile numbers and their lookup
hashes, and notify's sealed contact numbers, are erased; each erasure is one row in that schema's
audit_log. What the audit needs stays (application numbers, versions with the USCC and the facts,
events, state changes, decisions, the SMS log with masked numbers). Prints one JSON line per program.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("retention", help="erase personal data after a program batch closes ([retention])")
    parser.add_argument("action", choices=["run"])
    parser.add_argument("--now", type=datetime.fromisoformat, default=None, help="the moment to judge by (default: now)")
    parser.add_argument("--dry-run", action="store_true", help="only say which programs are due")
    parser.add_argument("--actor", default="operator:retention", help="who runs it (audit_log.actor)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from cli.main import apply_stack_env

    apply_stack_env()
    for line in asyncio.run(erase_due(now=args.now, dry_run=args.dry_run, actor=args.actor)):
        print(json.dumps(line, ensure_ascii=False, default=str))
    return 0


async def erase_due(*, now: datetime | None = None, dry_run: bool = False, actor: str = "operator:retention",
                    database_url: str | None = None) -> list[dict[str, Any]]:
    import asyncpg

    from services.intake import repository as intake_repository
    from services.notify import repository as notify_repository
    from subsidy.programs import programs
    from subsidy.settings import PlatformSettings

    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("--now needs an offset, e.g. +08:00")
    due = [p for p in programs().values() if p.retention is not None and p.retention.erase_due(now)]
    if dry_run or not due:
        return [{"program": p.code, "due": True, "dry_run": True} for p in due]
    url = database_url or PlatformSettings().database_url
    lines: list[dict[str, Any]] = []
    for schema, erase in (("intake", intake_repository.erase_personal_data), ("notify", notify_repository.erase_personal_data)):
        conn = await asyncpg.connect(url, server_settings={"search_path": f"{schema},public"})
        try:
            for program in due:
                lines.append({"schema": schema, **await erase(conn, program.code, actor=actor)})
        finally:
            await conn.close()
    return lines
