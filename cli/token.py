"""`subsidy token`: a bearer token for one official, signed by the run directory's local issuer,
printed on stdout (nothing else is printed there, so `TOKEN=$(subsidy token ...)` works).

    subsidy token --role lg_online_reviewer --user lg-rev-01 --name 张敏 --program LG-AI-MODEL-2025
    subsidy token --role window_clerk --user lg-w03-01 --program LG-AI-MODEL-2025 --window LG-W03

Only for the embedded stack: production officials get their tokens from the production issuer.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from collections.abc import Iterator

SUBJECT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
WINDOW = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_TTL_S = 7 * 24 * 3600


class _Roles:
    """The role names, read from `StaffRole` only when a --role is checked or listed: every `subsidy`
    command builds this parser at start, and the identity package (PyJWT, cryptography) is slow to import."""

    def _values(self) -> list[str]:
        from subsidy.identity.claims import StaffRole

        return [r.value for r in StaffRole]

    def __contains__(self, value: object) -> bool:
        return value in self._values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())


def add_parser(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser("token", help="print a bearer token from the local issuer (embedded stack only)")
    token.add_argument("--role", action="append", required=True, choices=_Roles(),
                       help="a role (repeat for several)")
    token.add_argument("--user", required=True, help="the official's id (token subject), [A-Za-z0-9._-]")
    token.add_argument("--name", help="display name (default: the user id)")
    token.add_argument("--program", action="append", default=[], metavar="CODE",
                       help="a program code the roles are granted for (repeat for several)")
    token.add_argument("--window", metavar="CODE", help="a window clerk's window code, e.g. LG-W03")
    token.add_argument("--ttl", type=int, default=3600, metavar="SECONDS", help="lifetime (default 3600)")
    token.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    token.add_argument("--issuer-url", help="the issuer's URL (default: the one the stack recorded)")
    token.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.operator import OperatorError, local_issuer
    from deploy.embedded.stack import default_run_dir
    from subsidy.programs import programs

    if not SUBJECT.match(args.user):
        return _err("--user must be 1-64 of A-Z a-z 0-9 . _ -")
    unknown = sorted(set(args.program) - set(programs()))
    if unknown:
        return _err(f"unknown program code(s): {', '.join(unknown)} (known: {', '.join(sorted(programs()))})")
    if args.window is not None and not WINDOW.match(args.window):
        return _err("--window must be a window code such as LG-W03")
    if not 1 <= args.ttl <= MAX_TTL_S:
        return _err(f"--ttl must be between 1 and {MAX_TTL_S} seconds")
    run_dir = Path(args.run_dir).resolve() if args.run_dir else default_run_dir()
    try:
        issuer = local_issuer(run_dir, args.issuer_url)
    except OperatorError as exc:
        return _err(str(exc))
    print(issuer.mint(subject=args.user, roles=args.role, programs=args.program, name=args.name,
                      window=args.window, ttl_s=args.ttl))
    return 0


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
