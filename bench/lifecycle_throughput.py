"""Lifecycle throughput: N applications of both programs through every step, end to end, against a
bare workflow on the same Temporal server in the same run.

    .venv/bin/python -m bench.lifecycle_throughput --run-dir /tmp/stack [--applications 20]

The lifecycle path: half the applications Longgang, half Shenzhen, all submitted at once on Kafka
as the portals send them (cli/demo_data.py's payloads, made unique per application), then driven
as the platform's clients drive it, with the pieces of `subsidy demo --drive` (cli/demo.py): each
official (a token from the stack's local issuer) opens their task list (`GET /api/tasks?step=...`)
every --task-poll-s seconds and takes every task of the run it finds, through review's API; the
Guangdong portal submits the watermarked form (fetched from review's /forms/{id}) over the signed
webhook when the platform's state-changed event says the form was issued; notify's local provider
reports the SMS deliveries by itself; the program-level steps (SZ tiering, publication) are taken
once the administrator's task list holds that step for every application of the program (the
publication task opens once the application is on the list), the list published as put up 30 days ago (its
period over). An application is done when its `published` state change is on Kafka.

The bare path: the same number of workflows of a bare workflow (bench/bare_lifecycle.py) on the
same server, each running the activities, updates and signals of one real lifecycle of its program
in the same order (read from a lifecycle's history after the lifecycle path), driven by one client
coroutine per workflow, waiting for the rest of its program where the lifecycle path's
administrators act for the whole batch (SZ tiering, the publication).

Printed: applications/s and state changes/s end to end, event -> SMS accepted latency (the state
change's occurred_at -> notify's sent_at), the ratio to the bare rate, the CPU of each component
during each path (bench/intake_throughput.py's meter), and where the applications spent their
time (per status, from the state changes), the waits between services (each outbox relay's delay, each
consumer's wait from Kafka to its handler, from the tables' timestamps) and inside Temporal (per
activity type queued and run, per update accepted -> completed, workflow tasks queued and run, from
the lifecycles' histories). Nothing is asserted. bench/README.md has figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.worker import Worker

import cli.demo as demo
from bench.bare_lifecycle import BARE_TASK_QUEUE, BARE_WORKFLOW, BareLifecycle, noop
from bench.intake_throughput import CpuMeter, cpu_line, log, percentile
from deploy.embedded import stack
from deploy.embedded.processes import StackError, free_port
from subsidy.contracts import topics
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.temporal import connect_from_env
from tests.support.fault_world import NO_QUIET_HOURS
from tests.support.processes import running_services

LG, SZ = demo.LG, demo.SZ
SERVICES = ("intake", "review", "notify", "worker")
TARGET = 0.75
DONE = {"published", "rejected", "withdrawn", "abandoned"}


def quiet_demo() -> None:
    """The demo's pieces print each step for a person; a benchmark prints its figures only."""
    demo.say = lambda text="": None  # type: ignore[assignment]


# --- the workload ----------------------------------------------------------------------------------


def application_numbers(token: int, n: int) -> dict[str, list[str]]:
    """`LG2025-7TTnnn` / `SZ2025-7TTnnn`: the contract's shape, TT the run token."""
    half = (n + 1) // 2
    return {LG: [f"LG2025-7{token:02d}{i:03d}" for i in range(1, half + 1)],
            SZ: [f"SZ2025-7{token:02d}{i:03d}" for i in range(1, n - half + 1)]}


def payload(data: Any, program: str, no: str, token: int, i: int) -> dict[str, Any]:
    """The demo's application of enterprise i, made unique within the run and across runs: its own
    USCC, contract, invoice and bank reference, product (the demo's vary by one digit only)."""
    k = i % 9 + 1
    if program == LG:
        p = data.longgang_application(no, k)
        p["applicant"]["uscc"] = data.uscc(f"91440300MA{token:03d}{i:04d}")
        contract = p["model_contracts"][0]
        contract["contract_no"] = f"HT-BENCH-{token:03d}-{i:06d}"
        contract["invoices"][0]["invoice_no"] = f"25442{token:03d}{i:012d}"
        contract["payments"][0]["bank_ref"] = f"CMB-BENCH-{token:03d}-{i:06d}"
    else:
        p = data.shenzhen_application(no, k)
        p["applicant"]["uscc"] = data.uscc(f"91440305MB{token:03d}{i:04d}")
        p["product"]["name"] = f"示例政务智能问答平台（压测{token:03d}-{i}）"
    return p


async def choose_token(db: asyncpg.Connection) -> int:
    for _ in range(50):
        token = random.randrange(100)
        used = await db.fetchval("SELECT count(*) FROM intake.applications WHERE application_no LIKE $1 OR application_no LIKE $2",
                                 f"LG2025-7{token:02d}%", f"SZ2025-7{token:02d}%")
        if not used:
            return token
    raise SystemExit("no unused run token (LG2025-7TT...): use a fresh stack")


# --- what happened: the state-changed events -------------------------------------------------------


@dataclass
class Seen:
    changes: dict[str, list[tuple[str | None, str, float, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    done_at: dict[str, float] = field(default_factory=dict)

    def status(self, no: str) -> str | None:
        return self.changes[no][-1][1] if self.changes.get(no) else None

    def count(self, nos: Sequence[str], status: str) -> int:
        return sum(1 for no in nos if any(to == status for _, to, _, _ in self.changes.get(no, ())))


async def follow_state_changes(bootstrap: str, mine: set[str], seen: Seen, ready: asyncio.Event,
                               on_change: Any) -> None:
    """Read `subsidy.application.state-changed.v1` from its end (assigned before anything is sent)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        spec = next(t for t in topics.ALL_TOPICS if t.name == topics.APPLICATION_STATE_CHANGED)
        parts = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            now = time.time()
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value)
                    data = event.get("data", event)
                    no = data.get("application_no")
                    if no not in mine:
                        continue
                    to = data.get("to_state") or data.get("to_status")
                    seen.changes[no].append((data.get("from_state"), to, now, data))
                    if to in DONE:
                        seen.done_at.setdefault(no, now)
                    on_change(no, to, data)
    finally:
        await consumer.stop()


# --- the officials and the portals -----------------------------------------------------------------


@dataclass
class Counters:
    actions: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    task_list_gets: int = 0
    errors: list[str] = field(default_factory=list)


class Driver:
    """Everyone outside the platform, through what the platform offers them."""

    def __init__(self, platform: demo.Platform, nos: dict[str, list[str]], token: int, poll_s: float, timeout: float) -> None:
        self.p, self.nos, self.token, self.poll_s, self.timeout = platform, nos, token, poll_s, timeout
        self.mine = set(nos[LG]) | set(nos[SZ])
        self.d = demo.Demo(platform)
        self.data = self.d.data
        self.seen = Seen()
        self.counters = Counters()
        self.taken: set[str] = set()  # task ids being (or been) acted on
        self.paper_requested: set[str] = set()
        self.assigned: set[str] = set()
        self.submitted_at: dict[str, float] = {}
        self.sent_at: dict[str, float] = {}  # inbound event id (the portals' envelopes) -> when it was sent
        self.background: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def act(self, who: demo.Official, method: str, path: str, body: dict[str, Any] | None = None,
                  what: str = "", again: tuple[int, ...] = (409, 429, 503)) -> dict[str, Any] | None:
        """One request as `who`; a 409/503 (busy, not yet there) or a dropped connection is asked
        again a little later, as a console's retry would. Returns the answer, or None when it never went through."""
        key = f"bench-{uuid.uuid4().hex}"
        for attempt in range(20):
            headers = {"authorization": f"Bearer {self.p.token(who)}"}
            if method == "POST":
                headers["idempotency-key"] = key
            try:
                response = await self.d.http.request(method, f"{self.p.review}{path}", json=body, headers=headers)
            except httpx.TransportError as exc:  # a kept-alive connection closed under us: a client asks again
                self.counters.retries[f"{what or path} ({type(exc).__name__})"] += 1
                await asyncio.sleep(0.5 + attempt * 0.5)
                continue
            if response.status_code == 200:
                self.counters.actions[what or path.rsplit("/", 1)[-1]] += 1
                return response.json()
            if response.status_code in again and attempt < 19:
                self.counters.retries[what or path] += 1
                await asyncio.sleep(0.5 + attempt * 0.5)
                continue
            self.counters.errors.append(f"{who.subject} {method} {path}: {response.status_code} {response.text[:200]}")
            return None
        return None

    # --- the portals -------------------------------------------------------------------------

    async def submit_all(self) -> None:
        sends = []
        for program, nos in self.nos.items():
            topic, kind = ((topics.PORTAL_LONGGANG_APPLICATIONS, topics.LONGGANG_APPLICATION_SUBMITTED) if program == LG
                           else (topics.PORTAL_SHENZHEN_APPLICATIONS, topics.SHENZHEN_APPLICATION_SUBMITTED))
            for i, no in enumerate(nos, start=1):
                event = self.data.envelope(kind, topic, payload(self.data, program, no, self.token, i))
                self.submitted_at[no] = self.sent_at[event["id"]] = time.time()
                sends.append(await self.d.producer.send(topic, json.dumps(event, ensure_ascii=False).encode(), key=no.encode()))
        await asyncio.gather(*sends)

    def on_change(self, no: str, to: str, data: dict[str, Any]) -> None:
        if to == "awaiting_gd_submission":  # the enterprise downloads the form, the Guangdong portal reports its submission
            self.spawn(self.guangdong_submission(no, data.get("form_id") or f"WF-{no}-V1"))

    async def guangdong_submission(self, no: str, form_id: str) -> None:
        who = demo.OFFICIALS["lg_back"]
        response = await self.d.http.get(f"{self.p.review}/forms/{form_id}", headers={"authorization": f"Bearer {self.p.token(who)}"})
        if response.status_code != 200:
            self.counters.errors.append(f"/forms/{form_id}: {response.status_code}")
            return
        digest = hashlib.sha256(response.content).hexdigest()
        event = self.data.envelope(topics.GUANGDONG_SUBMISSION_RECEIVED, topics.PORTAL_GUANGDONG_SUBMISSIONS,
                                   self.data.guangdong_submission(no, form_id, digest))
        self.sent_at[event["id"]] = time.time()
        await self.d.webhook(topics.PORTAL_GUANGDONG_SUBMISSIONS, event)
        self.counters.actions["guangdong_submission"] += 1

    # --- the task lists ----------------------------------------------------------------------

    async def task_list(self, who: demo.Official, step: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = await self.act(who, "GET", f"/api/tasks?step={step}&program={who.program}&sort=age&page_size=100&page={page}",
                                    what="GET /api/tasks")
            self.counters.task_list_gets += 1
            if answer is None:
                return items
            items += answer["items"]
            if page * 100 >= answer["total"]:
                return [t for t in items if t["application_no"] in self.mine]
            page += 1

    async def official(self, who: demo.Official, step: str, take: Any) -> None:
        """Open the task list every poll_s; take each task of the run not yet taken."""
        while True:
            for task in await self.task_list(who, step):
                tid = f"{who.subject}:{task['task_id']}"
                if tid not in self.taken:
                    self.taken.add(tid)
                    self.spawn(self._take(tid, take, task))
            await asyncio.sleep(self.poll_s)

    async def _take(self, tid: str, take: Any, task: dict[str, Any]) -> None:
        if await take(task["application_no"]) is None:
            self.taken.discard(tid)  # not taken: it comes back in the list

    async def lg_online(self, no: str) -> Any:
        return await self.act(demo.OFFICIALS["lg_online"], "POST", f"/api/applications/{no}/decisions", {"decision": "approve"},
                              what="lg online review")

    async def lg_back(self, no: str) -> Any:
        return await self.act(demo.OFFICIALS["lg_back"], "POST", f"/api/applications/{no}/decisions", {"decision": "approve"},
                              what="lg back-office review")

    async def lg_paper(self, no: str) -> Any:
        return await self.act(demo.OFFICIALS["lg_clerk"], "POST", f"/api/applications/{no}/paper",
                              {"copies": 2, "bound_and_stamped": True, "form_id": f"WF-{no}-V1"}, what="lg paper")

    async def lg_award(self, no: str) -> Any:
        admin = demo.OFFICIALS["lg_admin"]
        if await self.act(admin, "GET", f"/api/applications/{no}/award", what="lg award (GET)") is None:
            return None
        return await self.act(admin, "POST", f"/api/applications/{no}/award/confirm", {}, what="lg award confirm")

    async def sz_pre(self, no: str) -> Any:
        who = demo.OFFICIALS["sz_pre"]
        if no not in self.paper_requested:
            answer = await self.act(who, "POST", f"/api/applications/{no}/decisions",
                                    {"decision": "request_paper", "reasons": ["请预约到市民中心西区窗口提交纸质材料"]}, what="sz request paper")
            if answer is not None:
                self.paper_requested.add(no)
            return answer
        return await self.act(who, "POST", f"/api/applications/{no}/decisions", {"decision": "approve"}, what="sz pre-review approve")

    async def sz_paper(self, no: str) -> Any:
        return await self.act(demo.OFFICIALS["sz_clerk"], "POST", f"/api/applications/{no}/paper",
                              {"copies": 1, "bound_and_stamped": True}, what="sz paper")

    async def sz_assign(self, no: str) -> Any:
        panel = [demo.OFFICIALS[f"sz_expert_{i}"].subject for i in (1, 2, 3)]
        return await self.act(demo.OFFICIALS["sz_admin"], "POST", f"/api/applications/{no}/experts", {"experts": panel},
                              what="sz assign experts")

    def sz_score(self, expert: demo.Official) -> Any:
        async def score(no: str) -> Any:
            return await self.act(expert, "POST", f"/api/applications/{no}/scores", self.data.expert_scores(expert.name),
                                  what="sz expert score")
        return score

    # --- the program-level steps -------------------------------------------------------------

    async def program_step(self, who: demo.Official, step: str, program: str, act: Any) -> None:
        """A step taken for the whole program batch (SZ tiering, publication), once the
        administrator's task list holds it for every application of the run: the publication task
        opens when the application is on the list (enlisted), so nobody is left for the next list."""
        nos = set(self.nos[program])
        while nos:
            listed = {t["application_no"] for t in await self.task_list(who, step)}
            if nos <= listed:
                await act()
                return
            await asyncio.sleep(self.poll_s)

    async def confirm_tiering(self) -> None:
        admin = demo.OFFICIALS["sz_admin"]
        for _ in range(20):  # the products the administrator sees (on a used stack, other runs' may be there too)
            proposal = await self.act(admin, "GET", f"/api/programs/{SZ}/tiering", what="sz tiering (GET)")
            shown = [p["application_no"] for p in (proposal or {}).get("products", ())]
            if await self.act(admin, "POST", f"/api/programs/{SZ}/tiering/confirm", {"applications": shown},
                              what="sz tiering confirm", again=(429, 503)) is not None:
                return  # a 409 (the proposal changed meanwhile): look again
            await asyncio.sleep(self.poll_s)

    async def publish(self, admin: demo.Official, program: str) -> None:
        starts_at = (datetime.now(UTC) - timedelta(days=demo.PUBLISHED_DAYS_AGO)).isoformat()
        await self.act(admin, "POST", f"/api/programs/{program}/publication", {"starts_at": starts_at}, what="publish")

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        o = demo.OFFICIALS
        ready = asyncio.Event()
        loops = [asyncio.create_task(follow_state_changes(self.p.env["KAFKA_BOOTSTRAP_SERVERS"], self.mine, self.seen, ready,
                                                          self.on_change))]
        await ready.wait()
        loops += [asyncio.create_task(c) for c in (
            self.official(o["lg_online"], "online_review", self.lg_online),
            self.official(o["lg_back"], "back_office_review", self.lg_back),
            self.official(o["lg_clerk"], "paper", self.lg_paper),
            self.official(o["lg_admin"], "award", self.lg_award),
            self.official(o["sz_pre"], "formal_pre_review", self.sz_pre),
            self.official(o["sz_clerk"], "paper", self.sz_paper),
            self.official(o["sz_admin"], "expert_scoring", self.sz_assign),
            *(self.official(o[f"sz_expert_{i}"], "expert_scoring", self.sz_score(o[f"sz_expert_{i}"])) for i in (1, 2, 3)),
            self.program_step(o["sz_admin"], "tiering", SZ, self.confirm_tiering),
            self.program_step(o["lg_admin"], "publication", LG, lambda: self.publish(o["lg_admin"], LG)),
            self.program_step(o["sz_admin"], "publication", SZ, lambda: self.publish(o["sz_admin"], SZ)),
        )]
        try:
            await self.submit_all()
            deadline = time.monotonic() + self.timeout
            while len(self.seen.done_at) < len(self.mine):
                if time.monotonic() > deadline:
                    where = Counter(self.seen.status(no) for no in self.mine if no not in self.seen.done_at)
                    raise SystemExit(f"not done within {self.timeout:.0f}s: {dict(where)}; errors {self.counters.errors[:5]}")
                if any(t.done() and t.exception() for t in loops):
                    raise next(t.exception() for t in loops if t.done() and t.exception())  # type: ignore[misc]
                await asyncio.sleep(0.2)
        finally:
            for t in loops + list(self.background):
                t.cancel()
            await asyncio.gather(*loops, *self.background, return_exceptions=True)


# --- the bare workflow -------------------------------------------------------------------------------


async def plan_of(client: Client, program: str, no: str) -> str:
    """The ops of a lifecycle's history: activity, update, signal, in order."""
    history = await client.get_workflow_handle(application_workflow_id(program, no)).fetch_history()
    ops = {EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "a", EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "u",
           EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "s"}
    return "".join(ops[e.event_type] for e in history.events if e.event_type in ops)


def barrier_points(program: str, plan: str) -> set[int]:
    """The ops the lifecycle path takes for the whole batch at once: the publication (the last
    signal), and for SZ the tiering (its last update)."""
    points = {plan.rfind("s")} if "s" in plan else set()
    if program == SZ and "u" in plan:
        points.add(plan.rfind("u"))
    return points


async def bare_path(client: Client, plans: dict[str, str], counts: dict[str, int], token: int, timeout: float) -> tuple[float, float, list[str]]:
    """All workflows at once, each driven by one coroutine; at the batch-wide steps (see
    `barrier_points`) each waits for the other workflows of its program, as the lifecycle path's
    administrators do. Returns (first start, last completion, workflow ids)."""
    ids: list[str] = []
    arrived: Counter[tuple[str, int]] = Counter()
    barriers: dict[tuple[str, int], asyncio.Event] = defaultdict(asyncio.Event)
    t0 = time.time()

    async def one(program: str, plan: str, wid: str) -> float:
        handle = await client.start_workflow(BARE_WORKFLOW, plan, id=wid, task_queue=BARE_TASK_QUEUE)
        points = barrier_points(program, plan)
        for i, op in enumerate(plan):
            if i in points:
                arrived[(program, i)] += 1
                if arrived[(program, i)] == counts[program]:
                    barriers[(program, i)].set()
                await barriers[(program, i)].wait()
            if op == "u":
                while True:
                    try:
                        await handle.execute_update("decide", id=f"{wid}-u{i}", result_type=int)
                        break
                    except WorkflowUpdateRPCTimeoutOrCancelledError:  # the server's wait ended first (a saturated
                        continue  # machine): ask for the same update (its id) again, as a client would
            elif op == "s":
                await handle.signal("fact")
        await handle.result()
        return time.time()

    jobs = []
    for program, n in counts.items():
        for i in range(n):
            wid = f"bench-bare-{token:02d}-{uuid.uuid4().hex[:8]}-{program[:2]}-{i}"
            ids.append(wid)
            jobs.append(one(program, plans[program], wid))
    ends = await asyncio.wait_for(asyncio.gather(*jobs), timeout)
    return t0, max(ends), ids


# --- the report ----------------------------------------------------------------------------------------


async def sms_latencies(db: asyncpg.Connection, nos: Sequence[str]) -> list[float]:
    rows = await db.fetch(
        """SELECT extract(epoch FROM m.sent_at - s.occurred_at) AS seconds
           FROM intake.state_changes s JOIN notify.sms_messages m ON m.source_event_id = s.event_id::text
           WHERE s.application_no = ANY($1::text[]) AND m.sent_at IS NOT NULL""", list(nos))
    return [float(r["seconds"]) for r in rows]


async def time_in_status(db: asyncpg.Connection, nos: Sequence[str]) -> dict[tuple[str, str], list[float]]:
    """Seconds each application spent in each status (between its state changes' occurred_at)."""
    rows = await db.fetch("""SELECT application_no, program, to_status, occurred_at FROM intake.state_changes
                             WHERE application_no = ANY($1::text[]) ORDER BY application_no, occurred_at""", list(nos))
    spent: dict[tuple[str, str], list[float]] = defaultdict(list)
    for a, b in zip(rows, rows[1:]):
        if a["application_no"] == b["application_no"]:
            spent[(a["program"][:2], a["to_status"])].append((b["occurred_at"] - a["occurred_at"]).total_seconds())
    return spent


@dataclass
class Lag:
    """One consumer's (or the relay's) waits in the run, seconds."""

    name: str
    waits: list[float]
    span: float  # first to last handled (received_at), seconds

    def line(self) -> str:
        rate = len(self.waits) / self.span if self.span > 0 else float("nan")
        return (f"  {self.name:<34} n {len(self.waits):>5}  p50 {percentile(self.waits, 50) * 1000:7.0f}  "
                f"p99 {percentile(self.waits, 99) * 1000:7.0f}  max {max(self.waits) * 1000:7.0f} ms  "
                f"({rate:5.1f}/s over {self.span:5.1f} s)")


# The platform's outboxes (every event one service publishes to another) and inboxes.
OUTBOXES = ("intake", "review", "notify")


async def consumer_lags(db: asyncpg.Connection, nos: Sequence[str], sent_at: dict[str, float]) -> list[Lag]:
    """Where an event waits between services, from the tables' own timestamps: per outbox and
    topic, the relay's delay (`created_at`, the writing transaction's start -> `published_at`,
    stamped once Kafka acked it); per consumer (inbox `consumer`), the wait from published (an
    inbound event: sent by this bench) to its handler's transaction start (the inbox row's
    `received_at`). A consumer that handles one message at a time shows it as queueing: its lag
    grows through a burst, and its rate (handled per second, first to last) is its ceiling. intake
    writes its inbox row after the event's workflow command answered, so its wait includes that
    command (a start, or an update answered once the workflow has applied it)."""
    union = " UNION ALL ".join(
        f"SELECT '{s}' AS schema, event_id::text AS event_id, topic, created_at, published_at FROM {s}.outbox"
        f" WHERE message_key = ANY($1::text[])" for s in OUTBOXES)
    lags: list[Lag] = []
    relayed = await db.fetch(f"""SELECT schema, topic, extract(epoch FROM published_at - created_at) AS wait,
                                       extract(epoch FROM published_at) AS at
                                FROM ({union}) o WHERE published_at IS NOT NULL""", list(nos))
    by_relay: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in relayed:
        by_relay[f"relay {r['schema']} -> {r['topic'].removeprefix('subsidy.')}"].append((float(r["wait"]), float(r["at"])))
    for name, rows in sorted(by_relay.items()):
        lags.append(Lag(name, [w for w, _ in rows], max(a for _, a in rows) - min(a for _, a in rows)))
    for schema in OUTBOXES:
        rows = await db.fetch(f"""SELECT i.consumer, i.topic AS in_topic, i.event_id, extract(epoch FROM i.received_at) AS at,
                                         extract(epoch FROM i.received_at - o.published_at) AS wait
                                  FROM {schema}.inbox i LEFT JOIN ({union}) o ON o.event_id = i.event_id
                                  WHERE o.event_id IS NOT NULL OR i.event_id = ANY($2::text[])""",
                              list(nos), list(sent_at))
        by_consumer: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r in rows:
            wait = float(r["wait"]) if r["wait"] is not None else float(r["at"]) - sent_at[r["event_id"]]
            name = r["consumer"] if r["wait"] is not None else f"{r['consumer']} <- {r['in_topic'].removeprefix('portal.')}"
            by_consumer[name].append((wait, float(r["at"])))
        for consumer, found in sorted(by_consumer.items()):
            lags.append(Lag(f"{consumer} (in {schema})", [w for w, _ in found],
                            max(a for _, a in found) - min(a for _, a in found)))
    return lags


async def history_waits(client: Client, programs_nos: dict[str, list[str]]) -> dict[str, list[float]]:
    """From the lifecycles' histories, seconds per kind of wait inside Temporal: each activity type's
    queueing (scheduled -> started: matching and a free slot on its task queue's worker) and run
    (started -> completed), each update's accepted -> completed, the workflow tasks' queueing and run."""
    E = EventType
    waits: dict[str, list[float]] = defaultdict(list)

    def at(event: Any) -> float:
        return event.event_time.seconds + event.event_time.nanos / 1e9

    async def one(program: str, no: str) -> None:
        history = await client.get_workflow_handle(application_workflow_id(program, no)).fetch_history()
        by_id = {e.event_id: e for e in history.events}
        for e in history.events:
            if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                scheduled = by_id[e.activity_task_started_event_attributes.scheduled_event_id]
                name = scheduled.activity_task_scheduled_event_attributes.activity_type.name
                waits[f"activity {name}: queued"].append(at(e) - at(scheduled))
            elif e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                a = e.activity_task_completed_event_attributes
                name = by_id[a.scheduled_event_id].activity_task_scheduled_event_attributes.activity_type.name
                waits[f"activity {name}: run"].append(at(e) - at(by_id[a.started_event_id]))
            elif e.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                a = e.workflow_execution_update_completed_event_attributes
                accepted = by_id[a.accepted_event_id]
                name = accepted.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                waits[f"update {name}: accepted -> completed"].append(at(e) - at(accepted))
            elif e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                waits["workflow task: queued"].append(at(e) - at(by_id[e.workflow_task_started_event_attributes.scheduled_event_id]))
            elif e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                waits["workflow task: run"].append(at(e) - at(by_id[e.workflow_task_completed_event_attributes.started_event_id]))

    sem = asyncio.Semaphore(8)

    async def bounded(program: str, no: str) -> None:
        async with sem:
            await one(program, no)

    await asyncio.gather(*(bounded(program, no) for program, nos in programs_nos.items() for no in nos))
    return waits


def report(args: argparse.Namespace, n: int, driver: Driver, t0: float, t_end: float, changes: int,
           sms: list[float], spent: dict[tuple[str, str], list[float]], cpu_life: dict[str, float],
           bare: tuple[float, float] | None, bare_changes: int, cpu_bare: dict[str, float] | None, plans: dict[str, str],
           load: tuple[float, float, float], lags: list[Lag], temporal_waits: dict[str, list[float]]) -> None:
    life_s = t_end - t0
    rate = n / life_s
    print()
    print(f"lifecycle throughput: {n} applications ({len(driver.nos[LG])} {LG}, {len(driver.nos[SZ])} {SZ}), all in flight; "
          f"task lists opened every {args.task_poll_s:g}s")
    print(f"  load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared)")
    print(f"{'path':<30}{'apps':>6}{'seconds':>10}{'apps/s':>9}{'state changes/s':>17}")
    print(f"{'lifecycle (platform, API)':<30}{n:>6}{life_s:>10.1f}{rate:>9.2f}{changes / life_s:>17.1f}")
    if bare is not None:
        bare_s = bare[1] - bare[0]
        bare_rate = n / bare_s
        print(f"{'bare workflow (same ops)':<30}{n:>6}{bare_s:>10.1f}{bare_rate:>9.2f}{bare_changes / bare_s:>17.1f}  (activities/s)")
        ratio = rate / bare_rate
        print(f"\nlifecycle / bare workflow: {ratio:.2f}   target >= {TARGET:.2f} at 150 in flight: "
              f"{'MET' if ratio >= TARGET else 'NOT MET'}{'' if n >= 150 else f' (this run: {n} in flight)'}")
    print("  the bare plan per application (a activity, u update, s signal, from a lifecycle's history):")
    for program, plan in plans.items():
        print(f"    {program}: {plan}  ({plan.count('a')} activities, {plan.count('u')} updates, {plan.count('s')} signals)")
    if sms:
        print(f"\nevent -> SMS accepted (state change occurred_at -> notify sent_at): {len(sms)} SMS, "
              f"p50 {percentile(sms, 50) * 1000:.0f} ms, p99 {percentile(sms, 99) * 1000:.0f} ms")
    latencies = [driver.seen.done_at[no] - driver.submitted_at[no] for no in driver.mine if no in driver.seen.done_at]
    print(f"submitted -> published, per application: p50 {percentile(latencies, 50):.1f} s, p99 {percentile(latencies, 99):.1f} s")
    print("\nCPU busy during each path, in cores of the 2 (and CPU ms per application):")
    print(f"  lifecycle  {cpu_line(cpu_life, rate)}")
    if cpu_bare is not None and bare is not None:
        print(f"  bare       {cpu_line(cpu_bare, n / (bare[1] - bare[0]))}")
    print("\nwhere the applications spent their time (status -> next status, seconds; sum over the run's applications):")
    total = sum(sum(v) for v in spent.values()) or 1
    for (program, status), values in sorted(spent.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {program} {status:<24} n {len(values):>4}  p50 {percentile(values, 50):7.1f}  p99 {percentile(values, 99):7.1f}"
              f"  share {sum(values) / total:5.1%}")
    if lags:
        print("\nwaits between services (relay: written -> on Kafka; consumer: on Kafka -> its handler starts):")
        for lag in lags:
            print(lag.line())
    if temporal_waits:
        print("\nwaits inside Temporal, from the lifecycles' histories (seconds; sum over the run's applications):")
        for name, values in sorted(temporal_waits.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {name:<58} n {len(values):>5}  p50 {percentile(values, 50):6.2f}  p99 {percentile(values, 99):6.2f}"
                  f"  sum {sum(values):7.1f}")
    c = driver.counters
    print(f"\nrequests: {sum(c.actions.values())} answered 200 ({c.task_list_gets} task-list pages); "
          f"retries after 409/429/503: {sum(c.retries.values())} {dict(c.retries) if c.retries else ''}")
    if c.errors:
        print(f"errors ({len(c.errors)}): " + "; ".join(c.errors[:5]))


# --- main ----------------------------------------------------------------------------------------------


def service_pids() -> dict[str, list[int]]:
    """The `cli.main run NAME` children of this process (started by running_services)."""
    found: dict[str, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                words = cmdline.read().split(b"\0")
        except OSError:
            continue
        if ppid == os.getpid() and b"cli.main" in words and b"run" in words:
            found[words[words.index(b"run") + 1].decode()].append(int(entry))
    return found


async def run(env: dict[str, str], stack_pids: dict[str, int], run_dir: Path, log_dir: Path, args: argparse.Namespace) -> None:
    quiet_demo()
    load = os.getloadavg()
    db = await asyncpg.connect(env["DATABASE_URL"])
    client = await connect_from_env(env)
    token = await choose_token(db)
    nos = application_numbers(token, args.applications)
    mine = nos[LG] + nos[SZ]
    log(f"run token {token:02d}: {LG} {nos[LG][0]}..{nos[LG][-1]}, {SZ} {nos[SZ][0] if nos[SZ] else '-'}..")

    ports = {name: free_port() for name in SERVICES}
    urls = {"INTAKE_URL": f"http://127.0.0.1:{ports['intake']}", "NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}"}
    specs = {name: ({**env, "SUBSIDY_RUN_DIR": str(run_dir), "SMS_PROVIDERS": "local", **NO_QUIET_HOURS,
                           **(urls if name == "review" else {})},
                    log_dir / f"{name}.log") for name in SERVICES}
    log(f"starting {', '.join(SERVICES)} (logs in {log_dir}) ...")
    with running_services(specs, ports=ports, timeout=120):
        platform = demo.Platform(run_dir, env, f"http://127.0.0.1:{ports['intake']}", f"http://127.0.0.1:{ports['review']}",
                                 args.timeout)
        driver = Driver(platform, nos, token, args.task_poll_s, args.timeout)
        driver.d.http = httpx.AsyncClient(timeout=60)
        driver.d.producer = AIOKafkaProducer(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], enable_idempotence=True, acks="all")
        await driver.d.producer.start()
        pids = service_pids()
        meter = CpuMeter({**{name: pids.get(name, []) for name in SERVICES}, **{c: [pid] for c, pid in stack_pids.items()},
                          "bench": [os.getpid()]})
        try:
            if nos[SZ]:
                await driver.d.import_experts()
            log(f"lifecycle path: {len(mine)} applications ...")
            meter.start()
            t0 = time.time()
            await driver.run()
            t_end = max(driver.seen.done_at.values())
            cpu_life = meter.stop()
            log(f"lifecycle path done in {t_end - t0:.1f}s; {dict(Counter(driver.seen.status(no) for no in mine))}")
            log(f"lifecycle CPU: {cpu_line(cpu_life, len(mine) / (t_end - t0))}")  # kept if the bare path fails
        finally:
            await driver.d.producer.stop()
            await driver.d.http.aclose()
        changes = sum(len(driver.seen.changes[no]) for no in mine)
        sms = await sms_latencies(db, mine)
        spent = await time_in_status(db, mine)
        lags = await consumer_lags(db, mine, driver.sent_at)
        temporal_waits = await history_waits(client, nos)
        plans = {program: await plan_of(client, program, ns[0]) for program, ns in nos.items() if ns}

    bare, cpu_bare, bare_changes = None, None, 0
    if not args.no_bare:
        counts = {program: len(ns) for program, ns in nos.items() if ns}
        log(f"bare path: {len(mine)} workflows of the same plans ...")
        async with Worker(client, task_queue=BARE_TASK_QUEUE, workflows=[BareLifecycle], activities=[noop],
                          max_concurrent_workflow_tasks=50):
            meter = CpuMeter({**{c: [pid] for c, pid in stack_pids.items()}, "bench": [os.getpid()]})
            meter.start()
            b0, b1, _ = await bare_path(client, plans, counts, token, args.timeout)
            cpu_bare = meter.stop()
        if args.bare_without_eager:
            # The bare worker runs the activities of the workflows it runs, so the SDK hands each one
            # over in the workflow task's answer (eager execution: no activity task through the server's
            # matching, no separate start); the lifecycle's activities, on the services' task queues in
            # other processes, never can be. Here every activity goes through matching, as theirs do.
            log(f"bare path without eager activities: {len(mine)} workflows ...")
            async with Worker(client, task_queue=BARE_TASK_QUEUE, workflows=[BareLifecycle], activities=[noop],
                              max_concurrent_workflow_tasks=50, disable_eager_activity_execution=True):
                meter.start()
                c0, c1, _ = await bare_path(client, plans, counts, token, args.timeout)
                cpu_not_eager = meter.stop()
        bare = (b0, b1)
        bare_changes = sum(plans[p].count("a") * c for p, c in counts.items())
    report(args, len(mine), driver, t0, t_end, changes, sms, spent, cpu_life, bare, bare_changes, cpu_bare, plans, load, lags, temporal_waits)
    if args.bare_without_eager and bare is not None:
        rate, plain = len(mine) / (t_end - t0), len(mine) / (c1 - c0)
        print(f"\nfor reference, the bare path with every activity through the server's matching, as the lifecycle's are "
              f"(no eager execution): {c1 - c0:.1f} s, {plain:.2f} apps/s; lifecycle / that: {rate / plain:.2f}")
        print(f"  bare, not eager  {cpu_line(cpu_not_eager, plain)}")
    await db.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--applications", type=int, default=20, help="applications in flight, half of each program (default 20)")
    parser.add_argument("--run-dir", help="use the stack of this run directory (started there if not running)")
    parser.add_argument("--task-poll-s", type=float, default=1.0, help="each official opens their task list this often (default 1 s)")
    parser.add_argument("--timeout", type=float, default=None, help="bound of each path, seconds (default 300, or 4 s per application)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare workflow")
    parser.add_argument("--bare-without-eager", action="store_true",
                        help="also run the bare path with eager activity execution off, and print that ratio for reference")
    args = parser.parse_args(argv)
    if not 2 <= args.applications <= 1998:
        parser.error("--applications must be between 2 and 1998")
    if args.timeout is None:
        args.timeout = max(300.0, 4.0 * args.applications)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Each service started from scratch as its own process tree (not forked from the tests' fork server,
    # whose children `service_pids` would not find): the CPU of each is then measured apart.
    os.environ.setdefault("SUBSIDY_TEST_FORK", "0")
    if args.run_dir:
        run_dir = Path(args.run_dir).resolve()
        components = stack.status(run_dir)["components"].values()
        owned = not all(c["state"] in ("running", "external") for c in components)
    else:
        run_dir, owned = Path(tempfile.mkdtemp(prefix="subsidy-bench-stack-")), True
    log_dir = run_dir / "bench-logs" / f"lifecycle-{int(time.time())}"
    started = time.monotonic()
    try:
        try:
            state = stack.up(run_dir, progress=log)
        except StackError as exc:
            log(f"error: {exc}")
            return 1
        log_dir.mkdir(parents=True, exist_ok=True)
        pids = {c: record.pid for c, record in state.processes.items()}
        asyncio.run(run(dict(state.env), pids, run_dir, log_dir, args))
    finally:
        if owned:
            stack.down(run_dir, purge=not args.run_dir, progress=log)
        log(f"total {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
