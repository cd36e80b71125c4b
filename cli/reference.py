"""`subsidy reference import KIND FILE.csv`: load a reference list the review checks read (the CAC
generative-AI filing registry, the serious-dishonesty list, the scenario catalog, the expert
registry), and `subsidy reference list` shows the versions in effect.

The file is parsed whole by review's importer (services/review/reference/importer.py): a malformed
file is refused whole, naming the line and column of its first error (exit 1, nothing stored).
Otherwise the import is kept in review's schema as a new version (the SHA-256 of the file) with who
imported it; the latest import of a kind is the one in effect, and each finding that reads it
records its version. DATABASE_URL comes from the environment or the embedded stack.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

KINDS = ("cac_filings", "serious_dishonesty", "scenarios", "experts")


def add_parser(sub: argparse._SubParsersAction) -> None:
    reference = sub.add_parser("reference", help="reference lists the review checks read: import a CSV, list versions")
    actions = reference.add_subparsers(dest="action", required=True)
    load = actions.add_parser("import", help="import KIND from FILE.csv (refused whole at the first error)")
    load.add_argument("kind", choices=KINDS)
    load.add_argument("file", type=Path)
    load.add_argument("--by", help="who imports it (default operator:<login>)")
    load.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    load.set_defaults(func=run_import)
    show = actions.add_parser("list", help="the version of each kind in effect")
    show.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    show.set_defaults(func=run_list)


def _connect() -> Any:
    import asyncpg

    from subsidy.settings import PlatformSettings

    return asyncpg.connect(PlatformSettings().database_url)


def run_import(args: argparse.Namespace) -> int:
    from cli.main import apply_stack_env
    from services.review import repository
    from services.review.reference.importer import ReferenceImportError, import_reference

    try:
        content = args.file.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        parsed = import_reference(args.kind, content)
    except ReferenceImportError as exc:
        print(json.dumps({"imported": False, "kind": args.kind, "line": exc.line, "column": exc.column,
                          "message": exc.message}, ensure_ascii=False))
        print(f"error: {args.file} refused, nothing imported: {exc}", file=sys.stderr)
        return 1
    apply_stack_env(args.run_dir)
    by = args.by or f"operator:{getpass.getuser()}"
    rows = [row.model_dump(mode="json") for row in parsed.rows]

    async def store() -> int:
        conn = await _connect()
        try:
            async with conn.transaction():
                return await repository.store_reference(conn, parsed.kind, parsed.version, rows, by)
        finally:
            await conn.close()

    seq = asyncio.run(store())
    print(json.dumps({"imported": True, "kind": parsed.kind, "version": parsed.version, "rows": len(rows), "seq": seq, "by": by},
                     ensure_ascii=False))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from cli.main import apply_stack_env
    from services.review import repository

    apply_stack_env(args.run_dir)

    async def latest() -> dict[str, Any]:
        conn = await _connect()
        try:
            found = {kind: await repository.latest_reference(conn, kind) for kind in KINDS}
        finally:
            await conn.close()
        return {kind: None if f is None else {"version": f[0], "rows": len(f[1])} for kind, f in found.items()}

    print(json.dumps(asyncio.run(latest()), ensure_ascii=False, indent=2))
    return 0
