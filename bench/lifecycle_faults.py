"""Lifecycle throughput under faults: a steady load of applications of both programs, driven end to
end as the portals and the officials drive them, with one fault injected mid-run; the rate before,
during and after it, and the time back to 90% of the undisturbed rate.

    .venv/bin/python -m bench.lifecycle_faults --run-dir /tmp/stack            # every fault
    .venv/bin/python -m bench.lifecycle_faults --run-dir /tmp/stack --fault kafka --in-flight 24
    .venv/bin/python -m bench.lifecycle_faults --short                         # a quick look

The load is tests/support/fault_world.py's: the platform's four processes (intake, review, notify
with notify's local SMS provider and no quiet hours, the worker) as real processes that survive a
SIGKILL and a restart (`Platform`); each application follows one of its eight paths of both
programs (`PATHS`: Longgang up to award calculation, Shenzhen up to expert scoring, with
rejections and a withdrawal), portal events through intake's signed webhook (503s retried after
their Retry-After), every official's step through review's API with an Idempotency-Key, each step
waiting for its status in review's read model (`Driver`). Here the load is steady: --in-flight
applications run at once, and a new one starts whenever one ends (paced by --pace-s), for
--warmup-s + --before-s, then the fault, then --after-s from the moment the broken part runs again.
Then no more start, the ones in flight end, every application must show its final status, and
fault_world's `verify` counts what was lost or doubled (final statuses through the API, one chain
of state changes per application on Kafka, one SMS per notice, no dead letter, outboxes drained).

What is measured: **state changes per second**, i.e. completed lifecycle steps (the workflow's
transitions, automatic ones included) as the platform publishes them on
`subsidy.application.state-changed.v1`, counted once per event id at the Kafka timestamp of its
first record (the outbox relay's publish time: when the rest of the platform and the clients can
see the step). Alongside, the client's view: the driver's completed steps per second (a portal
event accepted, a decision answered, a status reached). Rates are counted in --window-s sliding
windows (1 s apart):

- **before**: the undisturbed rate, the --before-s right before the fault;
- **during**: from the fault's injection until the broken part runs again (process healthy,
  server up, failpoint crash restarted; for lost SMS replies: until the provider lost its 8th reply),
  or one window (--window-s) when that is shorter;
- **after**: the --after-s from that moment;
- **back to 90%**: from the injection to the end of the first window (of those starting at or
  after the injection) whose rate is at least 90% of "before": the moment the recovered rate can
  be seen. Its least value is one window (--window-s): no dip visible at that resolution. (Counted
  to the window's start instead, a catch-up burst after the outage would date the recovery before
  the broken part was even back.) **lowest**: the lowest window rate from the injection on.

The faults (`--fault NAME`, repeatable; default all): see FAULTS. The figures are printed; nothing
is asserted. bench/README.md ("Lifecycle under faults") has them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.intake_throughput import log
from deploy.embedded import stack
from subsidy.contracts import topics
from tests.faults.test_faults import crash_at, providers_env, restart_postgres, sigkill_all
from tests.support.fake_sms_providers import FakeAliyun, FakeTencent
from tests.support.fault_world import Application, Driver, Figures, Platform, read_topic, verify

# --- the faults ------------------------------------------------------------------------------------


@dataclass
class World:
    """What one fault needs beyond the usual platform: its environment and how it is injected."""

    inject: Callable[[Platform, Driver], Awaitable[None]]
    platform_env: dict[str, dict[str, str]] = field(default_factory=dict)
    provider_sends: Callable[[], Counter[str]] | None = None
    delivery_reports: bool = False


def stack_component_restart(run_dir: Path, component: str, down_s: float = 0.0) -> Callable[[Platform, Driver], Awaitable[None]]:
    async def inject(_platform: Platform, _driver: Driver) -> None:
        await asyncio.to_thread(stack.stop_component, component, run_dir, progress=lambda _m: None)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(stack.up, run_dir, progress=lambda _m: None)  # same port, data kept
    return inject


def fault_worlds(run_dir: Path, args: argparse.Namespace, fakes: contextlib.ExitStack) -> dict[str, Callable[[], World]]:
    """name -> the fault's World, made when the fault runs (the SMS fakes live for its run only)."""

    def postgres(mode: str) -> Callable[[], World]:
        return lambda: World(lambda _p, _d: asyncio.to_thread(restart_postgres, run_dir, mode))

    def notify_crash() -> World:
        async def inject(platform: Platform, _driver: Driver) -> None:
            await crash_at(platform, "notify", "notify.after_provider_accept")
            platform.kill(("notify",))  # and once more, with receipts scheduled and not yet reported
            platform.start(("notify",))
            await platform.healthy(("notify",))
        return World(inject)

    def lost_replies() -> World:
        aliyun, tencent = fakes.enter_context(FakeAliyun()), fakes.enter_context(FakeTencent())

        async def inject(_platform: Platform, _driver: Driver) -> None:
            sent = aliyun.send_requests
            aliyun.fail_next(args.lost_replies, "lost_reply")
            while aliyun.send_requests < sent + args.lost_replies:  # "during": until the last reply is lost
                await asyncio.sleep(0.2)

        def sends() -> Counter[str]:
            return Counter([m.out_id for m in aliyun.messages] + [m.session_context for m in tencent.messages])

        return World(inject, {"notify": providers_env(aliyun, tencent)}, sends, delivery_reports=True)

    async def nothing(_platform: Platform, _driver: Driver) -> None:
        return None

    return {
        "none": lambda: World(nothing),
        "sigkill": lambda: World(sigkill_all),
        "postgres-fast": postgres("fast"),
        "postgres-immediate": postgres("immediate"),
        "temporal": lambda: World(stack_component_restart(run_dir, "temporal")),
        "kafka": lambda: World(stack_component_restart(run_dir, "kafka", args.kafka_down_s)),
        "relay": lambda: World(lambda p, _d: crash_at(p, "intake", "outbox.after_publish")),
        "notify": notify_crash,
        "sms-lost-replies": lost_replies,
    }


FAULTS = {
    "none": "no fault (the control: how far the rate drifts on its own over the same periods)",
    "sigkill": "SIGKILL of intake, review, notify and the worker; all four restarted",
    "postgres-fast": "PostgreSQL restarted, fast shutdown",
    "postgres-immediate": "PostgreSQL restarted, immediate shutdown",
    "temporal": "Temporal dev server restarted (SQLite file kept)",
    "kafka": "Kafka broker stopped for {kafka_down_s:g} s, then started",
    "relay": "intake's outbox relay killed between publish and stamp (failpoint outbox.after_publish), restarted",
    "notify": "notify killed between the provider's accept and its commit (failpoint), restarted, SIGKILLed again",
    "sms-lost-replies": "SMS provider replies lost ({lost_replies} Aliyun sends accepted, then the connection closed; Tencent as failover)",
}


# --- the steady load --------------------------------------------------------------------------------


class LoadDriver(Driver):
    """fault_world's driver, noting when each client step completed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_times: list[float] = []

    def progressed(self, app: Application) -> None:
        super().progressed(app)
        self.step_times.append(time.time())


async def steady_load(driver: LoadDriver, in_flight: int, pace_s: float, stop: asyncio.Event, cap: int | None,
                      used: set[str]) -> list[asyncio.Task[None]]:
    """`in_flight` applications at once until `stop`: a new one whenever one ends. Returns the drives.
    `used`: application numbers already on the stack (the driver draws them at random and checks
    only its own: one drawn again would be refused as a duplicate submission and wait forever)."""
    slots = asyncio.Semaphore(in_flight)
    drives: list[asyncio.Task[None]] = []

    async def one(app: Application) -> None:
        try:
            await driver._one(app, asyncio.Semaphore(1))  # noqa: SLF001 - the driver's own per-application drive
        finally:
            slots.release()

    while not stop.is_set() and (cap is None or len(drives) < cap):
        await slots.acquire()
        if stop.is_set():
            slots.release()
            break
        app = driver.plan(1, first_path=len(drives))[0]  # the eight paths in turn
        while app.no in used:
            del driver.apps[app.no]
            app = driver.plan(1, first_path=len(drives))[0]
        driver.figures.applications += 1
        drives.append(asyncio.create_task(one(app)))
        await asyncio.sleep(pace_s)
    if cap is not None and len(drives) >= cap and not stop.is_set():
        log(f"WARNING: --applications {cap} reached before the end of the run: the load thins out from here")
    return drives


async def used_numbers(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return {r["application_no"] for r in await conn.fetch("SELECT application_no FROM intake.applications")}
    finally:
        await conn.close()


def busy_cores() -> tuple[float, float]:
    """(busy jiffies, all jiffies) of the whole machine, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [float(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Timeline:
    load_at: float = 0.0
    fault_at: float = 0.0
    back_at: float = 0.0
    end_at: float = 0.0  # the load's end (no more starts)
    machine: dict[str, float] = field(default_factory=dict)  # phase -> cores busy (the whole machine)


@dataclass
class Result:
    name: str
    title: str
    figures: Figures
    timeline: Timeline
    changes: list[float]  # publish times of the run's state changes (first copy of each event id)
    steps: list[float]  # the client's completed steps
    problems: list[str]
    exit_codes: dict[str, int]
    platform_cpu_s: float
    drain_s: float


async def run_fault(name: str, stack_env: dict[str, str], run_dir: Path, log_dir: Path,
                    args: argparse.Namespace) -> Result:
    title = FAULTS[name].format(**vars(args))
    figures = Figures(title)
    timeline = Timeline()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    database_url = stack_env["DATABASE_URL"]
    since_ms = int(time.time() * 1000) - 60_000
    with contextlib.ExitStack() as fakes:
        world = fault_worlds(run_dir, args, fakes)[name]()
        platform = Platform(stack_env, log_dir, world.platform_env)
        platform.start()
        try:
            await platform.healthy()
            driver = LoadDriver(platform, stack_env, run_dir, database_url, figures)
            if world.delivery_reports:
                driver.deliver = driver.report_delivery
            stop = asyncio.Event()
            machine: dict[str, tuple[float, float]] = {}
            async with httpx.AsyncClient(timeout=httpx.Timeout(90.0, connect=5.0)) as driver.http:
                watching = asyncio.create_task(driver._watch())  # noqa: SLF001 - review's read model, once a second
                timeline.load_at = time.time()
                loading = asyncio.create_task(steady_load(driver, args.in_flight, args.pace_s, stop, args.applications,
                                                          await used_numbers(database_url)))
                log(f"[{name}] load: {args.in_flight} in flight; warm-up {args.warmup_s:g} s, undisturbed {args.before_s:g} s ...")
                await asyncio.sleep(args.warmup_s)
                machine["before"] = busy_cores()
                await asyncio.sleep(args.before_s)
                figures.in_flight = sum(1 for a in driver.apps.values() if a.started and not a.finished)
                timeline.fault_at, figures.fault_at = time.time(), time.monotonic()
                machine["during"] = busy_cores()
                log(f"[{name}] fault: {title} ({figures.in_flight} applications in flight, load average {os.getloadavg()[0]:.1f})")
                await world.inject(platform, driver)
                timeline.back_at, figures.back_at = time.time(), time.monotonic()
                machine["after"] = busy_cores()
                log(f"[{name}] back after {timeline.back_at - timeline.fault_at:.1f} s; load goes on for {args.after_s:g} s ...")
                await asyncio.sleep(args.after_s)
                machine["end"] = busy_cores()
                stop.set()
                timeline.end_at = time.time()
                drives = await loading
                log(f"[{name}] {len(drives)} applications started; waiting for those in flight ...")
                drain_from = time.time()
                await asyncio.gather(*drives)
                drain_s = time.time() - drain_from
                watching.cancel()
            driver.http = None
            await driver.settle(timeout=args.settle_timeout)
            verdict = await verify(driver, stack_env, database_url, since_ms, provider_sends=world.provider_sends)
            records = await read_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"], topics.APPLICATION_STATE_CHANGED, since_ms=since_ms)
        finally:
            codes = await asyncio.to_thread(platform.stop)
    first: dict[str, float] = {}
    for record in records:
        change = json.loads(record.value)
        if change.get("application_no") in driver.apps:
            first[change["event_id"]] = min(first.get(change["event_id"], float("inf")), record.timestamp / 1000)
    phases = list(machine.items())
    for (phase, (busy0, all0)), (_, (busy1, all1)) in zip(phases, phases[1:]):
        timeline.machine[phase] = (busy1 - busy0) / (all1 - all0) * (os.cpu_count() or 1) if all1 > all0 else 0.0
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)
    return Result(name, title, figures, timeline, sorted(first.values()), sorted(driver.step_times), verdict.problems, codes, cpu, drain_s)


# --- the figures ----------------------------------------------------------------------------------


def rate(times: Sequence[float], start: float, end: float) -> float | None:
    if end - start <= 0:
        return None
    return sum(1 for t in times if start <= t < end) / (end - start)


def recovery(times: Sequence[float], fault_at: float, until: float, before: float, window: float) -> tuple[float | None, float | None]:
    """(seconds from the fault to the end of the first window with >= 90% of `before`, the lowest
    window rate from the fault on), windows of `window` s starting every second from the fault."""
    back: float | None = None
    lowest: float | None = None
    t = fault_at
    while t + window <= until:
        r = rate(times, t, t + window) or 0.0
        lowest = r if lowest is None else min(lowest, r)
        if back is None and r >= 0.9 * before:
            back = t + window - fault_at
        t += 1.0
    return back, lowest


def figures_of(result: Result, times: Sequence[float], args: argparse.Namespace) -> dict[str, Any]:
    tl = result.timeline
    before = rate(times, tl.fault_at - args.before_s, tl.fault_at) or 0.0
    during = rate(times, tl.fault_at, max(tl.back_at, tl.fault_at + args.window_s))
    after = rate(times, tl.back_at, tl.end_at) or 0.0
    back, lowest = recovery(times, tl.fault_at, tl.end_at, before, args.window_s)
    # The noise of the undisturbed rate itself: its windows below 90% of their mean.
    starts = [tl.fault_at - args.before_s + i for i in range(int(args.before_s - args.window_s) + 1)]
    below = sum(1 for t in starts if (rate(times, t, t + args.window_s) or 0.0) < 0.9 * before)
    return {"before": before, "during": during, "after": after, "back": back, "lowest": lowest,
            "noise": below / len(starts) if starts else None}


def fmt(value: float | None, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def report(results: Sequence[Result], args: argparse.Namespace) -> None:
    print()
    print(f"lifecycle under faults: {args.in_flight} applications in flight (steady), warm-up {args.warmup_s:g} s, "
          f"undisturbed {args.before_s:g} s, after {args.after_s:g} s, windows {args.window_s:g} s; "
          f"load average now {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    print("rates: state changes/s published on Kafka (first copy per event id, at its record timestamp); "
          "client steps/s in brackets")
    header = (f"{'fault':<20}{'apps':>5}{'in fl':>6}{'outage s':>9}{'before':>14}{'during':>14}{'after':>14}"
              f"{'lowest':>8}{'back 90% s':>11}{'lost':>5}{'dbl':>4}{'repeats':>8}")
    print(header)
    for r in results:
        k = figures_of(r, r.changes, args)
        c = figures_of(r, r.steps, args)
        f, tl = r.figures, r.timeline
        print(f"{r.name:<20}{f.applications:>5}{f.in_flight:>6}{tl.back_at - tl.fault_at:>9.1f}"
              f"{fmt(k['before']) + ' (' + fmt(c['before']) + ')':>14}{fmt(k['during']) + ' (' + fmt(c['during']) + ')':>14}"
              f"{fmt(k['after']) + ' (' + fmt(c['after']) + ')':>14}{fmt(k['lowest']):>8}"
              f"{fmt(k['back'], '.0f', 'never'):>11}{f.lost:>5}{f.doubled:>4}{f.redelivered:>8}")
    print()
    for r in results:
        f, tl = r.figures, r.timeline
        k = figures_of(r, r.changes, args)
        c = figures_of(r, r.steps, args)
        print(f"{r.name}: {r.title}")
        print(f"  applications {f.applications} ({len(r.changes)} state changes, {len(r.steps)} client steps), in flight at the fault "
              f"{f.in_flight}; SMS {f.sms}; webhook 503s {f.webhook_503}; client retries {f.api_retries}; "
              f"Kafka repeats {f.redelivered}; drain after the load {r.drain_s:.0f} s")
        print(f"  client steps back to 90%: {fmt(c['back'], '.0f', 'never')} s (lowest window {fmt(c['lowest'])}/s)")
        print(f"  the undisturbed period's own windows below 90% of its rate: {fmt(k['noise'], '.0%')} "
              f"(state changes), {fmt(c['noise'], '.0%')} (client steps): the noise the recovery is read against")
        print(f"  machine busy, cores of {os.cpu_count()}: " + ", ".join(f"{phase} {cores:.2f}" for phase, cores in tl.machine.items())
              + f"; the platform's processes: {r.platform_cpu_s:.0f} CPU s in all "
              f"({r.platform_cpu_s / max(1, len(r.changes)) * 1000:.0f} ms per state change)")
        series = []
        t = tl.fault_at - args.before_s
        while t < tl.end_at:
            series.append(fmt(rate(r.changes, t, min(t + 10, tl.end_at)), ".1f"))
            t += 10
        print(f"  state changes/s per 10 s from {args.before_s:g} s before the fault (| = fault, the part back at +"
              f"{tl.back_at - tl.fault_at:.0f} s): " + " ".join(series[: int(args.before_s // 10)]) + " | "
              + " ".join(series[int(args.before_s // 10):]))
        if r.problems:
            print(f"  PROBLEMS ({len(r.problems)}): " + " / ".join(p[:300] for p in r.problems[:5]))
        if any(r.exit_codes.values()):
            print(f"  exit codes at the end: {r.exit_codes}")
        print()


# --- main ----------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, run_dir: Path) -> None:
    state = await asyncio.to_thread(stack.up, run_dir, progress=log)
    env = dict(state.env)
    log_root = run_dir / "bench-logs" / f"faults-{int(time.time())}"
    results = []
    for name in args.fault:
        log_dir = log_root / name
        log_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = await run_fault(name, env, run_dir, log_dir, args)
        log(f"[{name}] done in {time.monotonic() - started:.0f} s; lost {result.figures.lost}, doubled {result.figures.doubled}"
            f"{'; PROBLEMS: ' + str(len(result.problems)) if result.problems else ''}")
        results.append(result)
        (log_dir / "figures.json").write_text(json.dumps({  # the raw times, to count them again differently
            "fault": name, "title": result.title, "figures": vars(result.figures), "timeline": vars(result.timeline),
            "state_changes": result.changes, "client_steps": result.steps, "problems": result.problems,
            "platform_cpu_s": result.platform_cpu_s, "args": vars(args)}, indent=1))
        report([result], args)  # as it goes: a long run's figures are not lost with a later failure
    if len(results) > 1:
        report(results, args)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fault", action="append", choices=list(FAULTS), help="the fault to inject (repeatable; default every fault but `none`, the control, each in a run of its own)")
    parser.add_argument("--run-dir", help="use the stack of this run directory (started if not running, left running); "
                                          "default: a temporary stack, purged at the end")
    parser.add_argument("--in-flight", type=int, default=None, help="applications driven at once (default 16; --short 8)")
    parser.add_argument("--applications", type=int, default=None, help="at most this many applications per fault (default: as many as the time takes)")
    parser.add_argument("--warmup-s", type=float, default=None, help="load before measuring (default 30; --short 15)")
    parser.add_argument("--before-s", type=float, default=None, help="the undisturbed rate's period (default 60; --short 30)")
    parser.add_argument("--after-s", type=float, default=None, help="load after the broken part is back (default 90; --short 40)")
    parser.add_argument("--window-s", type=float, default=20.0, help="the sliding windows of the rate (default 20)")
    parser.add_argument("--pace-s", type=float, default=0.2, help="at least this long between two starts (default 0.2)")
    parser.add_argument("--kafka-down-s", type=float, default=None, help="how long the broker stays stopped (default 60; --short 20)")
    parser.add_argument("--lost-replies", type=int, default=8, help="SMS sends whose reply the provider loses (default 8)")
    parser.add_argument("--settle-timeout", type=float, default=300.0, help="bound of the wait for every final status (default 300 s)")
    parser.add_argument("--short", action="store_true", help="shorter periods and less load: a quick look, not figures")
    args = parser.parse_args(argv)
    short = args.short
    for name, normal, quick in (("in_flight", 16, 8), ("warmup_s", 30.0, 15.0), ("before_s", 60.0, 30.0),
                                ("after_s", 90.0, 40.0), ("kafka_down_s", 60.0, 20.0)):
        if getattr(args, name) is None:
            setattr(args, name, quick if short else normal)
    args.fault = args.fault or [name for name in FAULTS if name != "none"]
    if args.in_flight < 1:
        parser.error("--in-flight must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        if args.run_dir:
            asyncio.run(run(args, Path(args.run_dir).resolve()))
        else:
            run_dir = Path(tempfile.mkdtemp(prefix="subsidy-bench-faults-"))
            try:
                asyncio.run(run(args, run_dir))
            finally:
                stack.down(run_dir, purge=True, progress=log)
                shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        log(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
