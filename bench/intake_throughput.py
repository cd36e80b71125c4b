"""Intake throughput: N Longgang first submissions through Kafka to "workflow started and stored",
against two baselines measured in the same run on the same stack.

    .venv/bin/python -m bench.intake_throughput [--events N] [--intake-processes K] [--run-dir DIR]

Paths (each measured after a warm-up that is not counted):

- intake: K real intake processes (`python -m cli.main run intake`); N submissions produced to
  `portal.longgang.applications.v1` as fast as possible (key = application number). An event is
  done when its `intake.inbound_events` row is visible with outcome 'applied' (written in one
  statement with the stored version, after `start_workflow` returned). The row is found by polling the
  database every --poll-ms; done time = the start of the poll that first saw it (so it is late by at
  most one poll interval). Latency = done - produce time; throughput = N / (last done - first produced).
- raw start: `client.start_workflow` of the same workflow type with equivalent StartLifecycle
  inputs and the same ID policies, fresh IDs, at intake's concurrency C = K x LANES_PER_TOPIC
  (each intake process has that many applications in progress per topic), measured right before
  and right after the intake path; and, for context, at concurrency 1. Latency = one call.
- raw consumer: the same N payloads to a fresh 6-partition benchmark topic, read by one plain
  AIOKafkaConsumer as intake's subscriber reads (group, earliest, `getmany` batches of at most
  intake's batch size, one commit per batch), started and assigned before producing.
  Latency = consumed-and-committed - produce time.

It prints a table, the ratios and whether the target (intake >= 80% of the raw start rate at the
same concurrency; the mean of the runs before and after) is met, and the ratio to the best raw
start rate of the run whatever its concurrency; then, to read where the time goes: the CPU each
component used during each path (from /proc; with a warning when processes outside the run used the
machine too), the intake latency split at the transaction's start, each intake process's own log
(batches), and per-event costs measured in this process. Nothing is asserted. Every wait is bounded
(--phase-timeout); only loopback addresses are used. bench/README.md has figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from deploy.embedded import stack
from deploy.embedded.processes import StackError, free_port
from services.intake.handlers import BATCH_MAX_RECORDS
from services.intake.settings import IntakeSettings
from subsidy.contracts import task_queues, topics
from subsidy.contracts.lifecycle import StartLifecycle
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.kafka_admin import ensure_topics
from subsidy.programs import Program, programs
from subsidy.temporal import connect_from_env
from tests.fixtures import events
from tests.support.processes import get_health

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROGRAM = "LG-AI-MODEL-2025"
TOPIC = topics.PORTAL_LONGGANG_APPLICATIONS
EVENT_TYPE = topics.LONGGANG_APPLICATION_SUBMITTED
SHANGHAI = ZoneInfo("Asia/Shanghai")
PARTITIONS = 6  # of the inbound topics (subsidy/contracts/topics.py) and of the benchmark topic
TARGET = 0.80
CONTEXT_CONCURRENCY = 1
WARMUP_PER_PARTITION = 2
BREAKDOWN_SAMPLES = 100
DRIFT_WARNING = 0.10  # the same-concurrency baseline moved more than this within the run: the ratio is suspect
OTHER_CPU_WARNING = 0.25  # cores used by processes outside the run: above this, the figures are suspect


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- results -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class PathResult:
    name: str
    events: int  # completed
    seconds: float  # first start -> last done
    latencies_ms: list[float]
    wanted: int
    notes: list[str] = field(default_factory=list)
    commit_ms: float = float("nan")  # raw consumer: median offset commit round trip
    cpu: dict[str, float] = field(default_factory=dict)  # cores busy per component during the path
    top_other: list[str] = field(default_factory=list)  # the busiest processes outside the run

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def row(self) -> str:
        events = f"{self.events}" if self.events == self.wanted else f"{self.events}/{self.wanted}"
        return (
            f"{self.name:<44} {events:>9} {self.rate:>10.1f} "
            f"{percentile(self.latencies_ms, 50):>9.1f} {percentile(self.latencies_ms, 99):>9.1f}"
        )


# --- workload ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    application_no: str
    event_id: str
    submitted_at: datetime
    body: bytes


def submissions(prefix: str, count: int, *, first: int = 1) -> list[Submission]:
    """`count` distinct Longgang first submissions (CONTRACTS.md example, tests/fixtures/events),
    application numbers `<prefix>-<first..>`, submitted_at spread over the filing window."""
    opens = datetime(2025, 12, 8, 9, 0, tzinfo=SHANGHAI)
    span = timedelta(days=4, hours=14)  # 2025-12-08 09:00 .. 2025-12-12 23:00, inside the window
    out = []
    for i in range(count):
        application_no = f"{prefix}-{first + i:06d}"
        submitted_at = (opens + span * ((i + 0.5) / count)).replace(microsecond=0)
        payload = {**events.longgang_submitted(), "application_no": application_no, "submitted_at": submitted_at.isoformat()}
        event_id = f"evt-bench-{uuid.uuid4().hex}"
        envelope = events.envelope(
            EVENT_TYPE, payload, subject=application_no, event_id=event_id, time=submitted_at.isoformat()
        )
        out.append(Submission(application_no, event_id, submitted_at, events.encode(envelope)))
    return out


def start_input(program: Program, submission: Submission) -> StartLifecycle:
    """What intake's LifecycleControl.start passes for a first submission."""
    return StartLifecycle(
        program=program.code,
        application_no=submission.application_no,
        version=1,
        submitted_at=submission.submitted_at,
        correlation_id=submission.event_id,
        policy=program.policy,
    )


async def choose_run_token(db: asyncpg.Connection, client: Client, letters: Iterable[str]) -> str:
    """Four random digits that no application number of this stack uses yet with `letters`
    (application numbers are `<2 letters><4 digits>-<6 digits>`; here the 4 digits are the run token)."""
    letters = list(letters)
    for _ in range(50):
        token = f"{random.randrange(10_000):04d}"
        if token == "2025":
            continue
        used = await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM intake.inbound_events WHERE application_no LIKE $1)", f"LG{token}-%"
        )
        if used:
            continue
        for pair in letters:  # a previous run with this token started <pair><token>-000001 first
            try:
                await client.get_workflow_handle(application_workflow_id(PROGRAM, f"{pair}{token}-000001")).describe()
                used = True
                break
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
        if not used:
            return token
    raise SystemExit("no unused run token found in 50 tries")


# --- the stack and the intake processes ----------------------------------------------------------


@dataclass
class IntakeProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_file: Path


def start_intake(env: dict[str, str], run_dir: Path, log_dir: Path, index: int) -> IntakeProcess:
    port = free_port()
    log_file = log_dir / f"intake-{index}.log"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", "intake"],
            env={**os.environ, **env, "SUBSIDY_RUN_DIR": str(run_dir), "HTTP_HOST": "127.0.0.1",
                 "HTTP_PORT": str(port), "LOG_FORMAT": "json"},
            stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
        )
    return IntakeProcess(proc, port, log_file)


async def wait_healthy(processes: Sequence[IntakeProcess], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(processes)
    while waiting:
        for p in list(waiting):
            if p.proc.poll() is not None:
                raise SystemExit(f"intake exited with {p.proc.returncode} during start-up; log: {p.log_file}\n"
                                 + p.log_file.read_text(errors="replace")[-2000:])
            if (await asyncio.to_thread(get_health, p.port))[0] == 200:
                waiting.remove(p)
        if waiting:
            if time.monotonic() > deadline:
                raise SystemExit(f"intake not healthy within {timeout:.0f}s; logs: {[str(p.log_file) for p in waiting]}")
            await asyncio.sleep(0.3)


def stop_intake(processes: Sequence[IntakeProcess]) -> list[str]:
    for p in processes:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    outcome = []
    for p in processes:
        try:
            code = p.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            code = p.proc.wait(timeout=10)
        outcome.append(f"intake :{p.port} exit {code} (log {p.log_file})")
    return outcome


# --- producing and waiting -----------------------------------------------------------------------


async def produce(producer: AIOKafkaProducer, topic: str, items: Sequence[Submission], *,
                  partitions: bool = False) -> list[float]:
    """Send every item as fast as the producer takes them; returns each one's send time (epoch s).
    With `partitions`, item i goes to partition i % PARTITIONS (warm-ups: every consumer gets some)."""
    sent, futures = [], []
    for i, item in enumerate(items):
        sent.append(time.time())
        futures.append(await producer.send(
            topic, item.body, key=item.application_no.encode(), partition=(i % PARTITIONS) if partitions else None))
    await asyncio.gather(*futures)
    return sent


@dataclass
class Seen:
    done: float  # epoch s: start of the poll that saw the row
    received_at: float  # epoch s: the row's received_at (now() of intake's one write, after the start)
    outcome: str
    reason: str | None


async def poll_inbound(db: asyncpg.Connection, event_ids: Iterable[str], *, interval: float, timeout: float) -> dict[str, Seen]:
    """Poll intake.inbound_events (primary-key lookups of the ids still pending) until every id has
    its row or `timeout` passes."""
    pending = set(event_ids)
    seen: dict[str, Seen] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        polled_at = time.time()
        rows = await db.fetch(
            "SELECT event_id, outcome, reason, received_at FROM intake.inbound_events WHERE event_id = ANY($1::text[])",
            list(pending),
        )
        for row in rows:
            pending.discard(row["event_id"])
            seen[row["event_id"]] = Seen(polled_at, row["received_at"].timestamp(), row["outcome"], row["reason"])
        if pending:
            await asyncio.sleep(interval)
    return seen


# --- the paths -----------------------------------------------------------------------------------


async def intake_path(db: asyncpg.Connection, producer: AIOKafkaProducer, work: Sequence[Submission], *,
                      k: int, lanes: int, poll: float, timeout: float) -> tuple[PathResult, dict[str, Seen], list[float]]:
    poller = asyncio.create_task(poll_inbound(db, [s.event_id for s in work], interval=poll, timeout=timeout))
    sent = await produce(producer, TOPIC, work)
    seen = await poller
    result = PathResult(f"intake ({k} process{'es' if k > 1 else ''} x {lanes} lanes)", 0, 0.0, [], len(work))
    applied = [(s, t) for s, t in zip(work, sent, strict=True) if s.event_id in seen and seen[s.event_id].outcome == "applied"]
    refused = [seen[s.event_id] for s in work if s.event_id in seen and seen[s.event_id].outcome != "applied"]
    if refused:
        result.notes.append(f"{len(refused)} refused, e.g. {refused[0].reason}")
    if len(seen) < len(work):
        result.notes.append(f"{len(work) - len(seen)} not stored within {timeout:.0f}s")
    if applied:
        result.events = len(applied)
        result.seconds = max(seen[s.event_id].done for s, _ in applied) - min(sent)
        result.latencies_ms = [(seen[s.event_id].done - t) * 1000 for s, t in applied]
    return result, seen, sent


async def raw_starts(client: Client, program: Program, work: Sequence[Submission], *, concurrency: int,
                     timeout: float) -> tuple[PathResult, list[str]]:
    """`start_workflow` as intake's LifecycleControl.start does it, `concurrency` calls in flight."""
    spans: list[tuple[float, float]] = []
    started: list[str] = []
    collisions = 0
    queue = iter(work)
    deadline = time.monotonic() + timeout

    async def caller() -> None:
        nonlocal collisions
        for submission in queue:
            if time.monotonic() > deadline:
                return
            workflow_id = application_workflow_id(program.code, submission.application_no)
            t0 = time.time()
            try:
                await client.start_workflow(
                    program.lifecycle, start_input(program, submission), id=workflow_id,
                    task_queue=task_queues.WORKFLOWS,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                collisions += 1
                continue
            spans.append((t0, time.time()))
            started.append(workflow_id)

    result = PathResult(f"raw start_workflow (concurrency {concurrency})", 0, 0.0, [], len(work))
    try:  # callers stop taking work at the deadline; a call that hangs is cut 30 s later
        await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(concurrency))), timeout=timeout + 30)
    except TimeoutError:
        result.notes.append("cut short: a start_workflow call did not return")
    result.events = len(spans)
    if spans:
        result.seconds = max(e for _, e in spans) - min(s for s, _ in spans)
        result.latencies_ms = [(e - s) * 1000 for s, e in spans]
    if collisions:
        result.notes.append(f"{collisions} IDs already used (closed workflows)")
    if len(spans) + collisions < len(work):
        result.notes.append(f"{len(work) - len(spans) - collisions} not started within {timeout:.0f}s")
    return result, started


async def raw_consumer(bootstrap: str, producer: AIOKafkaProducer, work: Sequence[Submission], warmup: Sequence[Submission],
                       *, token: str, timeout: float) -> PathResult:
    topic = f"bench.raw-consumer.{token}.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topics.TopicSpec(topic, PARTITIONS)])
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-raw-{token}", auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    result = PathResult("raw consumer (1 AIOKafkaConsumer)", 0, 0.0, [], len(work))
    commits: list[float] = []
    await consumer.start()
    try:
        async def consume(count: int) -> dict[bytes, float]:
            got: dict[bytes, float] = {}
            deadline = time.monotonic() + timeout
            while len(got) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=100, max_records=BATCH_MAX_RECORDS)
                records = [r for batch in batches.values() for r in batch]
                if not records:
                    continue
                t0 = time.perf_counter()
                await consumer.commit()  # one commit per batch, after its (here: empty) effects
                commits.append((time.perf_counter() - t0) * 1000)
                done = time.time()
                got.update((r.key, done) for r in records)
            return got

        reader = asyncio.create_task(consume(len(warmup)))  # assigned and fetching before the run
        await produce(producer, topic, warmup, partitions=True)
        if len(await reader) < len(warmup):
            result.notes.append("warm-up incomplete")
        commits.clear()
        reader = asyncio.create_task(consume(len(work)))
        sent = await produce(producer, topic, work)
        got = await reader
    finally:
        await consumer.stop()
        await _delete_topic(bootstrap, topic)
    done = [(got[s.application_no.encode()], t) for s, t in zip(work, sent, strict=True) if s.application_no.encode() in got]
    if done:
        result.events = len(done)
        result.seconds = max(d for d, _ in done) - min(sent)
        result.latencies_ms = [(d - t) * 1000 for d, t in done]
    result.commit_ms = percentile(commits, 50)
    return result


async def _delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    except Exception as exc:  # best effort: a leftover benchmark topic is harmless
        log(f"(could not delete {topic}: {type(exc).__name__})")
    finally:
        await admin.close()


# --- where the time goes: per-event costs measured in this process ------------------------------


async def breakdown(env: dict[str, str], work: Sequence[Submission]) -> list[tuple[str, float]]:
    """Median cost of the pieces of intake's per-event work, measured here one at a time: parsing,
    sealing, the pool checkout, the read and the write statement (rolled back: nothing is kept) and a
    commit that flushes WAL. The workflow start and the Kafka read+commit are the baselines above."""
    from services.intake import repository
    from services.intake.service import CONSUMER, Intake
    from services.intake.settings import IntakeSettings
    from subsidy.contracts.events import parse_event
    from subsidy.crypto import cipher_from_settings
    from subsidy.outbox import OutboxEvent

    settings = IntakeSettings(**{k.lower(): v for k, v in env.items() if k.startswith("PERSONAL_DATA")})
    intake = Intake(pool=None, control=None, cipher=cipher_from_settings(settings), programs=programs())  # type: ignore[arg-type]
    known = programs().keys()
    costs: list[tuple[str, float]] = []

    def median_ms(samples: list[float]) -> float:
        return percentile(samples, 50) * 1000

    samples, parsed = [], []
    for s in work:
        t0 = time.perf_counter()
        parsed.append(parse_event(TOPIC, s.body, known_programs=known))
        samples.append(time.perf_counter() - t0)
    costs.append(("parse + validate the event (JSON, pydantic, identifiers)", median_ms(samples)))

    samples, sealed_all = [], []
    for event in parsed:
        t0 = time.perf_counter()
        payload = event.payload.model_dump(mode="json")
        sealed, lookups = intake._seal_personal_data(event.payload.application_no, payload)
        samples.append(time.perf_counter() - t0)
        sealed_all.append((payload, sealed, lookups))
    costs.append(("dump + seal personal data (3 x AES-GCM + HMAC)", median_ms(samples)))

    costs.append(("the 'event applied' JSON log line, masked (FastStream's lines are per batch)", _logging_cost(work)))

    pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=2,
                                     server_settings={"search_path": "intake,public", "application_name": "bench"})
    try:
        samples = []
        for _ in work:
            t0 = time.perf_counter()
            async with pool.acquire():
                pass
            samples.append(time.perf_counter() - t0)
        costs.append(("pool acquire + release (asyncpg resets the connection)", median_ms(samples)))

        samples = []
        async with pool.acquire() as conn:
            for event, (payload, sealed, lookups) in zip(parsed, sealed_all, strict=True):
                data: Any = event.payload
                envelope = event.envelope
                t0 = time.perf_counter()
                tx = conn.transaction()
                await tx.start()
                await repository.known(conn, consumer=CONSUMER, source=envelope.source, event_id=envelope.id, application_no=data.application_no)
                await repository.record_effect(
                    conn, consumer=CONSUMER,
                    inbound=repository.Inbound(
                        event_id=envelope.id, topic=TOPIC, type=envelope.type, source=envelope.source,
                        application_no=data.application_no, event_time=envelope.time, applied=True, reason=None,
                    ),
                    version=repository.Version(
                        application_no=data.application_no, version=1, program=data.program, event_id=envelope.id,
                        submitted_at=data.submitted_at, applicant_uscc=data.applicant.uscc, payload=payload,
                        sealed=sealed, lookups=lookups, materials=payload.get("materials", []),
                    ),
                    events=[
                        OutboxEvent(topics.SUBMISSION_RECORDED, data.application_no, str(uuid.uuid4()), {"facts": payload}),
                        OutboxEvent(topics.CONTACT_RECORDED, data.application_no, str(uuid.uuid4()),
                                    {"sealed": sealed["applicant.contact.mobile"]}),
                    ],
                )
                await tx.rollback()
                samples.append(time.perf_counter() - t0)
            costs.append(("the read + the one write statement (inbox, inbound, version + lookups + materials, "
                          "submission + contact to the outbox), between BEGIN and ROLLBACK (nothing kept)",
                          median_ms(samples)))

            samples = []
            for _ in work:
                t0 = time.perf_counter()
                async with conn.transaction():
                    await conn.fetchval("SELECT txid_current()")  # an xid: the commit writes and flushes WAL
                samples.append(time.perf_counter() - t0)
            costs.append(("a commit that flushes WAL (BEGIN; txid_current(); COMMIT)", median_ms(samples)))
    finally:
        await pool.close()
    return costs


def _logging_cost(work: Sequence[Submission]) -> float:
    """Median time of the INFO line intake writes per event, through the platform's one logging
    configuration (JSON, masking), to /dev/null; the bench's own logging is restored after."""
    import contextlib
    import logging

    import structlog

    from subsidy.logging import configure_logging

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    samples = []
    try:
        configure_logging("intake", level="INFO", fmt="json")
        service_log = structlog.get_logger("services.intake.service")
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            for s in work:
                t0 = time.perf_counter()
                service_log.info("event applied", application_no=s.application_no, event_type=EVENT_TYPE, reason=None)
                samples.append(time.perf_counter() - t0)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.reset_defaults()
    return percentile(samples, 50) * 1000


# --- what intake's own log says -----------------------------------------------------------------


@dataclass
class LogSplit:
    """From one intake process's JSON log, the batches of the measured path: FastStream logs
    "Received" and "Processed" once per fetched batch; between them the process handles the batch
    (`in_key_order`); from "Processed" to the next "Received" it commits the batch's offsets and
    fetches the next one."""

    log_file: Path
    events: int = 0
    batches: int = 0
    batch_size: float = float("nan")  # median measured events per batch
    largest: int = 0
    batch_ms: float = float("nan")  # median Received -> Processed
    between_ms: float = float("nan")  # median Processed -> next Received
    handled_ms: list[float] = field(default_factory=list)  # per event: read, command, write ("event applied")
    command_ms: list[float] = field(default_factory=list)  # per event: the workflow command alone


def split_log(log_file: Path, measured: set[str]) -> LogSplit:
    split = LogSplit(log_file)
    sizes, durations, between = [], [], []
    received = processed = None
    in_batch = 0
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return split
    for line in lines:
        try:
            entry = json.loads(line)
            at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        what = entry.get("event")
        if what == "Received" and entry.get("topic") == TOPIC:
            if processed is not None and in_batch:
                between.append((at - processed) * 1000)
            received, processed, in_batch = at, None, 0
        elif what == "event applied" and entry.get("application_no") in measured:
            split.events += 1
            in_batch += 1
            if isinstance(entry.get("handled_ms"), (int, float)) and isinstance(entry.get("command_ms"), (int, float)):
                split.handled_ms.append(float(entry["handled_ms"]))
                split.command_ms.append(float(entry["command_ms"]))
        elif what == "Processed" and entry.get("topic") == TOPIC and received is not None:
            processed = at
            if in_batch:  # a batch of the measured path (not the warm-up's)
                sizes.append(in_batch)
                durations.append((at - received) * 1000)
    split.batches, split.largest = len(sizes), max(sizes, default=0)
    split.batch_size, split.batch_ms, split.between_ms = percentile(sizes, 50), percentile(durations, 50), percentile(between, 50)
    return split


# --- CPU use of each component during a phase ----------------------------------------------------


def _cpu_table() -> tuple[dict[int, float], dict[int, float], dict[int, list[int]]]:
    """CPU seconds of every process: with its reaped children's, and its own only; the children of each."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu: dict[int, float] = {}
    own: dict[int, float] = {}
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        cpu[pid] = sum(int(v) for v in fields[11:15]) / ticks  # utime stime cutime cstime
        own[pid] = sum(int(v) for v in fields[11:13]) / ticks
        children.setdefault(ppid, []).append(pid)
    return cpu, own, children


class CpuMeter:
    """Cores each named group of process trees kept busy between start() and stop(), the rest of
    the machine as `other`, and which outside processes used the most."""

    def __init__(self, roots: dict[str, list[int]]):
        self.roots = roots
        self._before: tuple[dict[str, float], dict[int, float]] = ({}, {})
        self._t0 = 0.0
        self.top_other: list[str] = []

    def _sample(self) -> tuple[dict[str, float], dict[int, float]]:
        cpu, own, children = _cpu_table()
        with open("/proc/stat") as stat:  # the whole machine: user nice system idle iowait irq softirq steal
            ticks = [int(v) for v in stat.readline().split()[1:9]]
        out = {"_machine": (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")}
        roots = {pid for pids in self.roots.values() for pid in pids}
        ours: set[int] = set()
        for name, pids in self.roots.items():
            total, todo = 0.0, list(pids)
            while todo:
                pid = todo.pop()
                ours.add(pid)
                total += cpu.get(pid, 0.0)
                # A group's tree stops at another group's root (this process started the stack and intake).
                todo.extend(child for child in children.get(pid, ()) if child not in roots)
            out[name] = total
        return out, {pid: seconds for pid, seconds in own.items() if pid not in ours}

    def start(self) -> None:
        self._before, self._t0 = self._sample(), time.monotonic()

    def stop(self) -> dict[str, float]:
        """Cores busy per group, and `other`: the rest of the machine (anything else running)."""
        (after, others), seconds = self._sample(), time.monotonic() - self._t0
        before, others_before = self._before
        busy = {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}
        machine = busy.pop("_machine")
        busy["other"] = max(0.0, machine - sum(busy.values()))
        deltas = sorted(((v - others_before.get(pid, 0.0), pid) for pid, v in others.items()), reverse=True)[:3]
        self.top_other = [f"{_command(pid)} {d / seconds:.2f}" for d, pid in deltas if d / seconds >= 0.02]
        return busy


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().split(b"\0")
    except OSError:
        return f"pid {pid}"
    return f"pid {pid} " + " ".join(w.decode(errors="replace") for w in words[:4])[:70]


def cpu_line(busy: dict[str, float], rate: float) -> str:
    """`name cores (CPU ms per event)`, for each component and in total."""
    def one(cores: float) -> str:
        return f"{cores:.2f} ({cores / rate * 1000:.1f})" if rate > 0 else f"{cores:.2f}"

    return ", ".join(f"{name} {one(cores)}" for name, cores in busy.items()) + f"; total {one(sum(busy.values()))}"


# --- clean-up ------------------------------------------------------------------------------------


async def terminate_all(client: Client, workflow_ids: Sequence[str], *, concurrency: int = 16, timeout: float = 120) -> str:
    """Terminate the workflows this run started (no worker runs them): bounded in concurrency and time."""
    queue = iter(workflow_ids)
    deadline = time.monotonic() + timeout
    counts = {"terminated": 0, "gone": 0, "failed": 0, "skipped": 0}

    async def terminator() -> None:
        for workflow_id in queue:
            if time.monotonic() > deadline:
                counts["skipped"] += 1
                continue
            try:
                await client.get_workflow_handle(workflow_id).terminate(reason="benchmark over")
                counts["terminated"] += 1
            except RPCError as exc:
                counts["gone" if exc.status == RPCStatusCode.NOT_FOUND else "failed"] += 1

    started = time.monotonic()
    await asyncio.gather(*(terminator() for _ in range(concurrency)))
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) + f" in {time.monotonic() - started:.1f}s"


# --- the run -------------------------------------------------------------------------------------


async def run(env: dict[str, str], stack_pids: dict[str, int], run_dir: Path, log_dir: Path, args: argparse.Namespace) -> None:
    n, k, timeout, poll = args.events, args.intake_processes, args.phase_timeout, args.poll_ms / 1000
    # Intake's concurrency: each process has LANES_PER_TOPIC applications of the topic in progress.
    lanes = int(os.environ.get("LANES_PER_TOPIC") or IntakeSettings.model_fields["lanes_per_topic"].default)
    c = k * lanes
    program = programs()[PROGRAM]
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    client = await connect_from_env(env)
    db = await asyncpg.connect(env["DATABASE_URL"])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    intake: list[IntakeProcess] = []
    workflow_ids: list[str] = []
    try:
        token = await choose_run_token(db, client, ("LG", "LR", "LA", "LC", "LW"))
        warm = WARMUP_PER_PARTITION * PARTITIONS
        intake_work = submissions(f"LG{token}", n)
        intake_warm = submissions(f"LG{token}", warm, first=900_001)
        raw_before_work = submissions(f"LR{token}", n)
        raw_after_work = submissions(f"LA{token}", n)
        raw_one_work = submissions(f"LC{token}", n)
        raw_warm = submissions(f"LW{token}", 10)
        if not all(program.filing.accepts(s.submitted_at) for s in intake_work + intake_warm):
            raise SystemExit("a submission falls outside the filing window")
        log(f"run token {token}: intake application numbers LG{token}-000001..{n:06d}")

        log(f"starting {k} intake process(es) (logs in {log_dir}) ...")
        t0 = time.monotonic()
        intake = [start_intake(env, run_dir, log_dir, i) for i in range(k)]
        await wait_healthy(intake, timeout)
        log(f"intake healthy in {time.monotonic() - t0:.1f}s; warm-up: {warm} events over the {PARTITIONS} partitions ...")
        poller = asyncio.create_task(poll_inbound(db, [s.event_id for s in intake_warm], interval=poll, timeout=timeout))
        await produce(producer, TOPIC, intake_warm, partitions=True)
        warm_seen = await poller
        workflow_ids += [application_workflow_id(PROGRAM, s.application_no) for s in intake_warm]
        if len(warm_seen) < warm or any(v.outcome != "applied" for v in warm_seen.values()):
            raise SystemExit(f"intake warm-up failed: {len(warm_seen)}/{warm} stored; see {log_dir}")

        meter = CpuMeter({"intake": [p.proc.pid for p in intake], **{c: [pid] for c, pid in stack_pids.items()},
                          "bench": [os.getpid()]})
        async def measured_raw_starts(work: Sequence[Submission], concurrency: int, label: str = "") -> PathResult:
            log(f"raw start_workflow, concurrency {concurrency}{label}: {n} starts ...")
            meter.start()
            result, ids = await raw_starts(client, program, work, concurrency=concurrency, timeout=timeout)
            result.cpu, result.top_other = meter.stop(), meter.top_other
            result.name += label
            workflow_ids.extend(ids)
            return result

        _, ids = await raw_starts(client, program, raw_warm, concurrency=c, timeout=timeout)  # warm-up, not counted
        workflow_ids += ids
        raw_before = await measured_raw_starts(raw_before_work, c, ", before")

        log(f"intake path: {n} submissions to {TOPIC} ...")
        meter.start()
        intake_result, seen, sent = await intake_path(db, producer, intake_work, k=k, lanes=lanes, poll=poll, timeout=timeout)
        intake_result.cpu, intake_result.top_other = meter.stop(), meter.top_other
        workflow_ids += [application_workflow_id(PROGRAM, s.application_no) for s in intake_work]  # unstarted: "gone"

        raw_after = await measured_raw_starts(raw_after_work, c, ", after")
        raw_one = await measured_raw_starts(raw_one_work, CONTEXT_CONCURRENCY)

        log(f"raw consumer: {n} messages to a benchmark topic ...")
        consumer_result = await raw_consumer(bootstrap, producer, intake_work, intake_warm, token=token, timeout=timeout)

        for line in stop_intake(intake):
            log(line)
        splits = [split_log(p.log_file, {s.application_no for s in intake_work}) for p in intake]
        intake = []
        log("per-event costs in this process ...")
        costs = await breakdown(env, submissions(f"LB{token}", BREAKDOWN_SAMPLES))

        report(n, k, lanes, intake_result, (raw_before, raw_after), raw_one, consumer_result, seen, sent, intake_work,
               costs, poll, splits)
        log("terminating the workflows this run started ...")
        log(await terminate_all(client, workflow_ids, timeout=timeout))
    finally:
        if intake:
            for line in stop_intake(intake):
                log(line)
        await producer.stop()
        await db.close()


def report(n: int, k: int, lanes: int, intake: PathResult, same: tuple[PathResult, PathResult], raw_one: PathResult,
           consumer: PathResult, seen: dict[str, Seen], sent: list[float], work: Sequence[Submission],
           costs: list[tuple[str, float]], poll: float, splits: Sequence[LogSplit]) -> None:
    c = k * lanes
    print()
    print(f"intake throughput: {n} Longgang first submissions, {k} intake process(es) x {lanes} lanes, "
          f"{os.cpu_count()} cores, {datetime.now().astimezone().isoformat(timespec='seconds')}")
    print()
    print(f"{'path':<44} {'events':>9} {'events/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
    for result in (intake, *same, raw_one, consumer):
        print(result.row())
        for note in result.notes:
            print(f"    note: {note}")
    print("latency: intake and raw consumer = produce -> done, queueing included (all N are produced at once);")
    print("         raw start = one start_workflow call")
    print()
    baseline = sum(r.rate for r in same) / len(same)
    best = max(r.rate for r in (*same, raw_one))
    vs_start = intake.rate / baseline

    def ratio(label: str, value: float, note: str = "") -> None:
        print(f"{label:<86} {value:5.2f}{note}")

    ratio(f"intake / raw start_workflow at the same concurrency ({c}; mean of before and after, {baseline:.1f}/s):",
          vs_start, f"   target >= {TARGET:.2f}: {'MET' if vs_start >= TARGET else 'NOT MET'}")
    ratio(f"intake / the best raw start_workflow rate of this run ({best:.1f}/s):", intake.rate / best)
    ratio(f"intake / raw start_workflow at concurrency {CONTEXT_CONCURRENCY}:", intake.rate / raw_one.rate)
    ratio("intake / raw consumer:", intake.rate / consumer.rate)
    drift = same[1].rate / same[0].rate
    ratio("raw start_workflow at the same concurrency, after / before the intake path:", drift)
    if abs(drift - 1) > DRIFT_WARNING:
        print(f"  WARNING: the raw start rate moved by {abs(drift - 1):.0%} between before and after the intake path "
              "(the Temporal dev server's pace changes with its SQLite file): the ratio is uncertain by about as much; "
              "run again")
    print()
    print(f"CPU busy during the path, in cores of the {os.cpu_count()} (and CPU ms per event):")
    for result in (intake, *same, raw_one):
        print(f"  {result.name:<44} {cpu_line(result.cpu, result.rate)}")
    busy = [r for r in (intake, *same, raw_one) if r.cpu.get("other", 0.0) > OTHER_CPU_WARNING]
    for r in busy:
        print(f"  WARNING: other processes kept more than {OTHER_CPU_WARNING} core busy during {r.name}"
              f"{' (' + '; '.join(r.top_other) + ')' if r.top_other else ''}")
    if busy:
        print("  the figures and ratios of this run are not reliable: run again on a quiet machine")

    pairs = [(seen[s.event_id], t) for s, t in zip(work, sent, strict=True)
             if s.event_id in seen and seen[s.event_id].outcome == "applied"]
    if pairs:
        waited = [(v.received_at - t) * 1000 for v, t in pairs]
        polled = [(v.done - v.received_at) * 1000 for v, _ in pairs]
        print()
        print("intake latency, split at the row's received_at (now() of intake's one write, after the workflow start):")
        print(f"  produce -> written  p50 {percentile(waited, 50):8.1f} ms  p99 {percentile(waited, 99):8.1f} ms"
              "  (waiting in Kafka behind earlier events, then read, start_workflow)")
        print(f"  written -> seen     p50 {percentile(polled, 50):8.1f} ms  p99 {percentile(polled, 99):8.1f} ms"
              f"  (the write + commit, + up to {poll * 1000:.0f} ms of polling)")
    handled = [ms for split in splits for ms in split.handled_ms]
    commands = [ms for split in splits for ms in split.command_ms]
    if handled:
        # Little's law: applications in progress = rate x time one takes (intake's log, per event).
        mean_handled, mean_command = sum(handled) / len(handled), sum(commands) / len(commands)
        print(f"  one event in intake (its log): p50 {percentile(handled, 50):.1f} ms, of which the workflow command "
              f"p50 {percentile(commands, 50):.1f} ms; mean {mean_handled:.1f} ms, command {mean_command:.1f} ms")
        print(f"  applications in progress on average (rate x mean time in intake): {intake.rate * mean_handled / 1000:.1f} "
              f"of {c} lanes, at Temporal: {intake.rate * mean_command / 1000:.1f}")
    print()
    print("intake's own JSON log, per process (batches of the measured path; medians):")
    for i, split in enumerate(splits):
        print(f"  process {i}: {split.events} events in {split.batches} batches ({split.batch_size:.0f}, largest "
              f"{split.largest}); "
              f"a batch {split.batch_ms:.1f} ms (Received -> Processed); then {split.between_ms:.1f} ms "
              "to the next batch (offset commit, fetch)")
    print()
    print("per-event costs measured in the benchmark process (median of "
          f"{BREAKDOWN_SAMPLES}; for reading, not a path):")
    for name, ms in costs:
        print(f"  {ms:7.2f} ms  {name}")
    print(f"  {percentile(raw_one.latencies_ms, 50):7.2f} ms  start_workflow round trip (raw start, concurrency 1, p50)")
    print(f"  {consumer.commit_ms:7.2f} ms  Kafka offset commit round trip (raw consumer, median; once per batch)")
    if intake.cpu:
        print(f"  intake's process used {intake.cpu.get('intake', 0.0) / intake.rate * 1000:.2f} ms of CPU per event "
              "(CPU table above)")
    print(flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.intake_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500, help="submissions per path (default 500)")
    parser.add_argument("--intake-processes", type=int, default=1, help="intake processes K (default 1, at most 6)")
    parser.add_argument("--run-dir", help="use the stack of this run directory (started there if not running)")
    parser.add_argument("--poll-ms", type=int, default=50, help="database poll interval of the intake path (default 50)")
    parser.add_argument("--phase-timeout", type=float, default=None,
                        help="bound of each wait, seconds (default: 120, or N/10 when larger)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary run directory's logs")
    args = parser.parse_args(argv)
    if not 1 <= args.events <= 100_000:
        parser.error("--events must be between 1 and 100000")
    if not 1 <= args.intake_processes <= PARTITIONS:
        parser.error(f"--intake-processes must be between 1 and {PARTITIONS} (the topic's partitions)")
    if not 5 <= args.poll_ms <= 1000:
        parser.error("--poll-ms must be between 5 and 1000")
    if args.phase_timeout is None:
        args.phase_timeout = max(120.0, args.events / 10)
    elif not 10 <= args.phase_timeout <= 3600:
        parser.error("--phase-timeout must be between 10 and 3600")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_dir:
        run_dir, temporary = Path(args.run_dir).resolve(), False
        components = stack.status(run_dir)["components"].values()
        owned = not all(c["state"] in ("running", "external") for c in components)
    else:
        # A fresh run directory under the system temp dir, as tests/conftest.py makes one.
        run_dir, temporary, owned = Path(tempfile.mkdtemp(prefix="subsidy-bench-stack-")), True, True
    log_dir = run_dir / "bench-logs"
    ok = False
    started = time.monotonic()
    try:
        try:
            state = stack.up(run_dir, progress=log)
        except StackError as exc:
            log(f"error: {exc}")
            return 1
        log_dir.mkdir(parents=True, exist_ok=True)
        log(f"stack ready in {time.monotonic() - started:.1f}s ({run_dir})")
        pids = {c: record.pid for c, record in state.processes.items()}
        asyncio.run(run(dict(state.env), pids, run_dir, log_dir, args))
        ok = True
    finally:
        if owned:
            stack.down(run_dir, purge=temporary, progress=log)
            if temporary and ok and not args.keep_logs:
                shutil.rmtree(run_dir, ignore_errors=True)
            elif temporary:
                log(f"logs kept in {log_dir}")
        log(f"total {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
