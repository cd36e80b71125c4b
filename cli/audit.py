"""`subsidy audit verify`: walk review's hash-chained audit log and say whether it is intact.

Exit 0 with the number of rows when every row's hash matches its content and the previous row's
hash; exit 1 naming the first row that does not match (a row altered, removed or reordered
through SQL). The chain and its check belong to review (`services.review.audit.chain.verify_chain`);
this is only the command. DATABASE_URL comes from the environment or the embedded stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="the audit log: verify its hash chain")
    audit.add_argument("action", choices=["verify"])
    audit.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    audit.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.main import apply_stack_env

    apply_stack_env(args.run_dir)
    import asyncpg

    from subsidy.settings import PlatformSettings

    try:
        from services.review.audit.chain import verify_chain
    except ModuleNotFoundError:
        print("error: this build has no audit chain (services/review/audit/chain.py)", file=sys.stderr)
        return 2

    async def verify() -> Any:
        conn = await asyncpg.connect(PlatformSettings().database_url, server_settings={"search_path": "review,public"})
        try:
            return await verify_chain(conn)
        finally:
            await conn.close()

    report = asyncio.run(verify())
    if report.intact:
        print(json.dumps({"intact": True, "rows": report.count}))
        return 0
    print(json.dumps({"intact": False, "rows_checked": report.count, "first_bad_seq": report.first_bad_seq,
                      "reason": report.reason}, ensure_ascii=False))
    print(f"error: audit chain broken at row {report.first_bad_seq}: {report.reason}", file=sys.stderr)
    return 1
