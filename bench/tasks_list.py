"""The task list (`GET /api/tasks`) with 10,000 open tasks, against the same query alone.

    .venv/bin/python -m bench.tasks_list [--tasks 10000] [--requests 400] [--run-dir DIR]

- Setup: `--tasks` open tasks of a program code made up for the run (`BENCH-T<token>`), inserted
  with review's own bulk path (`repository.insert_task_for_bench`, COPY): 40% online review
  (lg_online_reviewer), 20% each back-office review, paper and award; opened over the last 60 days,
  half with a deadline (a quarter of those past). A real review process (`python -m cli.main run
  review`) on the stack; a token of the stack's local issuer for an online reviewer of that program.
- API path: `--requests` sequential `GET /api/tasks` over one keep-alive connection, cycling through
  filters and paging: sort by deadline or age, page 1..5 (and a deep page), page_size 20/50/100,
  `overdue=true` on every fourth, `step=online_review` on every third. Latency = the HTTP call
  (token verification, the query, JSON).
- Baseline: the same queries (`repository.list_tasks` with the same TaskQuery), through asyncpg
  alone, in this process, right after.

Prints p50/p95/max of both, the ratio, and whether p95 < 300 ms. Nothing is asserted. The tasks are
deleted at the end. Without `--run-dir` the embedded stack is started in a temporary directory and
purged at the end. bench/README.md has figures.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.stack_run import run_on_stack

TARGET_P95_MS = 300.0
STEPS = [("online_review", "lg_online_reviewer")] * 4 + [
    ("back_office_review", "lg_back_office_reviewer"), ("paper", "window_clerk"), ("award", "program_admin")] * 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tasks_list", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--run-dir", help="use the stack there (started if not running)")
    return parser.parse_args(argv)


def queries(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        params: dict[str, Any] = {"sort": "deadline" if i % 2 == 0 else "age", "page": 1 + i % 5,
                                  "page_size": (20, 50, 100)[i % 3]}
        if i % 4 == 3:
            params["overdue"] = "true"
        if i % 3 == 2:
            params["step"] = "online_review"
        if i % 10 == 9:
            params["page"] = 30  # a deep page
        out.append(params)
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def seed(conn: asyncpg.Connection, program: str, count: int) -> None:
    from services.review import repository

    now = datetime.now(UTC)
    rng = random.Random(42)
    rows = []
    for i in range(count):
        step, role = STEPS[i % len(STEPS)]
        opened = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
        deadline = None
        if i % 2 == 0:
            deadline = now + timedelta(hours=rng.randrange(-24 * 10, 24 * 30))
        rows.append((program, f"BT{i:06d}", step, role, opened, deadline, f"bench-{program}-{i}"))
    await repository.insert_task_for_bench(conn, rows)
    await conn.execute("ANALYZE review.tasks")


def start_review(env: dict[str, str], log_file: Path) -> tuple[subprocess.Popen[bytes], int]:
    from deploy.embedded.processes import free_port

    port = free_port()
    with open(log_file, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "run", "review"],
                                env={**os.environ, **env, "HTTP_PORT": str(port), "LOG_FORMAT": "json"},
                                stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"review did not become healthy; see {log_file}")
        time.sleep(0.3)


async def run(args: argparse.Namespace, run_dir: Path) -> None:
    from deploy.embedded import stack
    from services.review import repository
    from subsidy.identity.local_issuer import LocalIssuer

    state = stack.up(run_dir, progress=lambda m: print(m, file=sys.stderr))
    env = dict(state.env)
    program = f"BENCH-T{uuid.uuid4().hex[:6].upper()}"
    conn = await asyncpg.connect(env["DATABASE_URL"])
    proc = None
    try:
        started = time.perf_counter()
        await seed(conn, program, args.tasks)
        print(f"seeded {args.tasks} open tasks of {program} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        proc, port = start_review(env, run_dir / "bench-review.log")
        issuer = LocalIssuer.for_run_dir(run_dir, env["OIDC_ISSUER"])
        token = issuer.mint(subject="bench-reviewer", roles=["lg_online_reviewer"], programs=[program])
        plan = queries(args.requests)
        api_ms: list[float] = []
        totals = set()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"}) as http:
            for params in plan[:20]:  # warm-up (JWKS fetch, connection, plans), not counted
                (await http.get("/api/tasks", params=params)).raise_for_status()
            for params in plan:
                t0 = time.perf_counter()
                response = await http.get("/api/tasks", params=params)
                api_ms.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
                totals.add(response.json()["total"])
        sql_ms: list[float] = []
        now = datetime.now(UTC)
        for params in plan:
            query = repository.TaskQuery(
                programs=[program], roles=["lg_online_reviewer"], subject="bench-reviewer", actor_id="staff:bench-reviewer",
                step=params.get("step"), overdue=True if params.get("overdue") else None, sort=params["sort"],
                limit=params["page_size"], offset=(params["page"] - 1) * params["page_size"],
            )
            t0 = time.perf_counter()
            await repository.list_tasks(conn, query, now)
            sql_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        await conn.execute("DELETE FROM review.tasks WHERE program = $1", program)
        await conn.close()

    def line(name: str, values: list[float]) -> str:
        return f"| {name} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 95):.1f} | {max(values):.1f} |"

    print(f"\nGET /api/tasks with {args.tasks} open tasks ({sum(1 for s in STEPS if s[1] == 'lg_online_reviewer') / len(STEPS):.0%} "
          f"the caller's role), totals seen: {sorted(totals)}\n")
    print("| path | requests | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|")
    print(line("GET /api/tasks (HTTP, token, query, JSON)", api_ms))
    print(line("baseline: the same query via asyncpg", sql_ms))
    ratio = percentile(api_ms, 95) / percentile(sql_ms, 95)
    verdict = "met" if percentile(api_ms, 95) < TARGET_P95_MS else "NOT met"
    print(f"\np95 ratio API / query alone: {ratio:.1f}x; target p95 < {TARGET_P95_MS:.0f} ms: {verdict}")


def main(argv: list[str] | None = None) -> int:
    return run_on_stack(run, parse_args(argv), prefix="subsidy-bench-tasks-")


if __name__ == "__main__":
    sys.exit(main())
