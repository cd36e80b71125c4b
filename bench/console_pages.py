"""The console's task list and application page with 10,000 open tasks, against the API alone.

    .venv/bin/python -m bench.console_pages [--tasks 10000] [--requests 200] [--run-dir DIR]

- Setup: as bench/tasks_list.py, `--tasks` open tasks of a program code made up for the run
  (review's bulk path), and one application of that program with a history of state changes
  (review's own event handler, `repository.apply_state_change`). A real review process on the
  stack (it serves `/api` and `/console`); a token of the stack's local issuer for an online
  reviewer of that program, as a bearer header for the API and as the console's session cookie.
- Measured, interleaved, sequential over one keep-alive connection each:
  `GET /console/tasks` (page 1..5, 20 rows, by deadline or age; the console verifies the token,
  calls `/api/tasks` in-process, renders the table) against `GET /api/tasks` with the same filters;
  `GET /console/applications/{no}` (basic tab) against `GET /api/applications/{no}`.
  Intake and notify are not configured, so the application view's upstream sections answer
  "not configured" at once in both paths.

Prints p50/p95/max per path and the console's p95 against the API's. Nothing is asserted; the
bench's rows are deleted at the end. bench/README.md has figures.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.stack_run import run_on_stack
from bench.tasks_list import percentile, seed, start_review

TARGET_P95_MS = 300.0
STATUSES = ["submitted", "pre_check", "online_review", "returned", "online_review", "approved_online"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.console_pages", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--run-dir", help="use the stack there (started if not running)")
    return parser.parse_args(argv)


async def seed_application(conn: asyncpg.Connection, program: str, application_no: str) -> None:
    from services.review import repository
    from subsidy.contracts.platform_events import ApplicationStateChanged

    start = datetime.now(UTC) - timedelta(days=3)
    previous = None
    for i, status in enumerate(STATUSES):
        event = ApplicationStateChanged(
            event_id=str(uuid.uuid4()), program=program, application_no=application_no, from_state=previous,
            to_state=status, reason="请补充近两年财务审计报告" if status == "returned" else None,
            actor="staff:bench-reviewer" if status in ("returned", "approved_online") else "system:lifecycle",
            deadline=start + timedelta(days=5) if status in ("online_review", "returned") else None,
            occurred_at=start + timedelta(hours=6 * i), version=2 if i >= 4 else 1)
        async with conn.transaction():
            await repository.apply_state_change(conn, event)
        previous = status
    # and back to online review, so the page shows an open task and its decision buttons
    event = ApplicationStateChanged(event_id=str(uuid.uuid4()), program=program, application_no=application_no,
                                    from_state=previous, to_state="online_review", actor="system:lifecycle",
                                    deadline=start + timedelta(days=6), occurred_at=start + timedelta(hours=40), version=3)
    async with conn.transaction():
        await repository.apply_state_change(conn, event)


async def run(args: argparse.Namespace, run_dir: Path) -> None:
    from deploy.embedded import stack
    from subsidy.identity.local_issuer import LocalIssuer

    state = stack.up(run_dir, progress=lambda m: print(m, file=sys.stderr))
    env = dict(state.env)
    env.update(INTAKE_URL="", NOTIFY_URL="")  # the view's upstream sections: "not configured", no call
    program = f"BENCH-C{uuid.uuid4().hex[:6].upper()}"
    application_no = f"BC{uuid.uuid4().hex[:8].upper()}"
    conn = await asyncpg.connect(env["DATABASE_URL"])
    proc = None
    timings: dict[str, list[float]] = {"console_tasks": [], "api_tasks": [], "console_app": [], "api_app": []}
    try:
        started = time.perf_counter()
        await seed(conn, program, args.tasks)
        await seed_application(conn, program, application_no)
        print(f"seeded {args.tasks} open tasks and {application_no} of {program} in {time.perf_counter() - started:.1f}s",
              file=sys.stderr)
        proc, port = start_review(env, run_dir / "bench-console-review.log")
        issuer = LocalIssuer.for_run_dir(run_dir, env["OIDC_ISSUER"])
        token = issuer.mint(subject="bench-reviewer", roles=["lg_online_reviewer"], programs=[program], name="压测审核员")
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {token}"}) as api, \
                httpx.AsyncClient(base_url=base, cookies={"console_session": token}) as console:

            async def timed(name: str, client: httpx.AsyncClient, path: str, params: dict[str, object]) -> None:
                t0 = time.perf_counter()
                response = await client.get(path, params=params)
                elapsed = (time.perf_counter() - t0) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
                timings[name].append(elapsed)

            for i in range(args.requests + 10):
                params = {"sort": "deadline" if i % 2 == 0 else "age", "page": 1 + i % 5}
                await timed("console_tasks", console, "/console/tasks", params)
                await timed("api_tasks", api, "/api/tasks", {**params, "page_size": 20})
                await timed("console_app", console, f"/console/applications/{application_no}", {})
                await timed("api_app", api, f"/api/applications/{application_no}", {})
        for values in timings.values():
            del values[:10]  # warm-up: JWKS fetch, connections, query plans, templates
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        for table in ("tasks", "state_changes", "applications"):
            await conn.execute(f"DELETE FROM review.{table} WHERE program = $1", program)
        await conn.close()

    def line(name: str, values: list[float]) -> str:
        return f"| {name} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 95):.1f} | {max(values):.1f} |"

    print(f"\nThe console's pages with {args.tasks} open tasks (40% of them the caller's), against the API alone\n")
    print("| path | requests | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|")
    print(line("GET /console/tasks (page 1-5, 20 rows)", timings["console_tasks"]))
    print(line("GET /api/tasks (same filters)", timings["api_tasks"]))
    print(line("GET /console/applications/{no}", timings["console_app"]))
    print(line("GET /api/applications/{no}", timings["api_app"]))
    for page, api_name in (("console_tasks", "api_tasks"), ("console_app", "api_app")):
        p95 = percentile(timings[page], 95)
        verdict = "met" if p95 < TARGET_P95_MS else "NOT met"
        print(f"{page}: p95 {p95:.1f} ms = {p95 / percentile(timings[api_name], 95):.1f}x the API's; "
              f"target p95 < {TARGET_P95_MS:.0f} ms: {verdict}")


def main(argv: list[str] | None = None) -> int:
    return run_on_stack(run, parse_args(argv), prefix="subsidy-bench-console-")


if __name__ == "__main__":
    sys.exit(main())
