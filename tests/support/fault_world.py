"""The fault level's world: the platform's four processes (intake, review, notify, worker) as real
processes on an embedded stack of its own, applications of both programs driven through every step
as the portals and the officials take them, and the checks every fault test ends with.

- `Platform` starts the processes on fixed ports (review names intake's and notify's), kills them
  with SIGKILL and starts them again; each keeps appending to its log.
- `Driver` takes N applications along mixed paths (`PATHS`): portal events through intake's signed
  webhook (a 503 is retried after its Retry-After, as a portal does; the event id stays the same,
  so a retried event is the same event), every official's step through review's API with a token
  of the stack's local issuer and one Idempotency-Key per step (retried with that key when the
  answer is lost). Nothing here calls a Temporal update. The driver waits for each step's status
  in review's read model (one query for all applications, not a poll per application).
- `verify` is what every test asserts at the end: every application in its path's final status
  (read through the API by an auditor); on the state-change topic every transition of every
  application exactly once (one chain of distinct event ids, from the submission to the final
  status, without a gap or a repeat); exactly one SMS recorded by the local provider per notice the
  lifecycle called for; no dead letter; every outbox drained and nothing set aside.

Figures (applications in flight at the fault, lost, doubled, time to recover) are printed, never
asserted as times; bench/README.md's "Faults" table records them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.embedded.processes import free_port
from services.intake.webhook import sign
from services.notify.providers.local import delivery_receipt
from subsidy.contracts import topics
from subsidy.identity.claims import StaffRole
from subsidy.identity.local_issuer import LocalIssuer
from tests.fixtures import events
from tests.support.longgang_journey import contract
from tests.support.processes import get_health
from tests.support.review_world import LG, SZ, Official

SERVICES = ("intake", "notify", "worker", "review")
SCHEMAS = ("intake", "review", "notify")

LG_ONLINE = Official("lg-online-f1", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))
LG_BACK = Official("lg-back-f1", (StaffRole.LG_BACK_OFFICE_REVIEWER,), (LG,))
LG_CLERK = Official("lg-clerk-f1", (StaffRole.WINDOW_CLERK,), (LG,), window="LG-W03")
SZ_PRE = Official("sz-pre-f1", (StaffRole.SZ_PRE_REVIEWER,), (SZ,))
AUDITOR = Official("auditor-f1", (StaffRole.AUDITOR,), (LG, SZ))

# Each path: program, and the status each application on it must end in. `Driver._drive` takes
# the steps; the chain of state changes on Kafka must lead from the submission to this status.
PATHS: dict[str, tuple[str, str]] = {
    "lg_online": (LG, "online_review"),  # submitted, waits for its reviewer
    "lg_reject": (LG, "rejected"),  # rejected at online review (an SMS)
    "lg_gd": (LG, "awaiting_gd_submission"),  # approved online, waits for the Guangdong portal
    "lg_paper": (LG, "award_calculation"),  # Guangdong, back office, approval SMS and its receipt, paper
    "sz_pre": (SZ, "formal_pre_review"),
    "sz_reject": (SZ, "rejected"),
    "sz_pass": (SZ, "expert_scoring"),
    "sz_withdraw": (SZ, "withdrawn"),  # withdrawn by the enterprise on its portal
}
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
FIGURES: list["Figures"] = []  # every fault test's, printed at the end of the run (tests/faults/conftest.py)


def applications_from_env(default: int = 64) -> int:
    """How many applications each fault test drives: FAULTS_APPLICATIONS (the issue asks for a few
    hundred; the default keeps `make test` within its budget on two cores)."""
    return max(len(PATHS), int(os.environ.get("FAULTS_APPLICATIONS", default)))


def stamp() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# --- the four processes ---------------------------------------------------------------------------


# The verdict counts one SMS per notice: a run in the evening (21:00-08:00 Asia/Shanghai, notify's
# default quiet hours) would hold the non-exempt ones until the morning and count them lost. These
# tests are about faults, not the hour; quiet hours have their own tests (tests/unit/test_notices.py).
NO_QUIET_HOURS = {"SMS_QUIET_START": "00:00", "SMS_QUIET_END": "00:00"}


class Platform:
    """intake, notify (local SMS provider), worker and review as `subsidy run NAME` processes on
    fixed ports, which survive a SIGKILL and a restart."""

    def __init__(self, stack_env: dict[str, str], log_dir: Path, extra_env: dict[str, dict[str, str]] | None = None) -> None:
        self.ports = {name: free_port() for name in SERVICES}
        self.log_dir = log_dir
        urls = {"INTAKE_URL": f"http://127.0.0.1:{self.ports['intake']}",
                "NOTIFY_URL": f"http://127.0.0.1:{self.ports['notify']}"}
        self.env = {
            "intake": dict(stack_env),
            "notify": {**stack_env, "SMS_PROVIDERS": "local", "SMS_DAILY_LIMIT": "1000", **NO_QUIET_HOURS},
            "worker": dict(stack_env),
            "review": {**stack_env, **urls},
        }
        for name, extra in (extra_env or {}).items():
            self.env[name].update(extra)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: Counter[str] = Counter()

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, names: tuple[str, ...] = SERVICES, *, env: dict[str, str] | None = None) -> None:
        for name in names:
            assert name not in self.procs or self.procs[name].poll() is not None, f"{name} is running"
            with open(self.log_file(name), "ab") as log:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "cli.main", "run", name],
                    env={**os.environ, **self.env[name], **(env or {}), "HTTP_PORT": str(self.ports[name]), "LOG_FORMAT": "json"},
                    stdout=log, stderr=subprocess.STDOUT,
                )
            self.starts[name] += 1

    async def healthy(self, names: tuple[str, ...] = SERVICES, timeout: float = 300) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pending = set(names)
        while pending:
            for name in sorted(pending):
                if (await asyncio.to_thread(get_health, self.ports[name]))[0] == 200:
                    pending.discard(name)
                elif self.procs[name].poll() is not None:
                    raise AssertionError(f"{name} exited with {self.procs[name].returncode}:\n{self.log_file(name).read_text(errors='replace')[-3000:]}")
            if pending:
                assert loop.time() < deadline, f"{sorted(pending)} not healthy within {timeout} s"
                await asyncio.sleep(0.25)

    def kill(self, names: tuple[str, ...] = SERVICES) -> None:
        """SIGKILL: no shutdown hook, no offset commit, no lease given back."""
        for name in names:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    async def exited(self, name: str, timeout: float = 600) -> int:
        return await asyncio.to_thread(self.procs[name].wait, timeout)

    def stop(self) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait(timeout=30)
        return codes


# --- the applications -------------------------------------------------------------------------------


@dataclass
class Application:
    no: str
    path: str
    program: str
    expected: str
    mobile: str
    steps_done: int = 0
    started: bool = False
    finished: bool = False
    error: str | None = None


@dataclass
class Figures:
    """What a fault test prints for bench/README.md's table."""

    fault: str
    applications: int = 0
    in_flight: int = 0  # applications submitted and not yet through their path when the fault began
    lost: int = 0
    doubled: int = 0
    redelivered: int = 0  # Kafka records of an event id already seen (at-least-once; consumers absorb them)
    webhook_503: int = 0
    api_retries: int = 0
    fault_at: float | None = None
    back_at: float | None = None  # the faulted part running again
    recovered_at: float | None = None  # the first step of any application completed after that
    settled_at: float | None = None  # every application in its final status
    sms: int = 0

    def line(self) -> str:
        def span(a: float | None, b: float | None) -> str:
            return f"{b - a:.1f}" if a is not None and b is not None else "-"
        return (f"FAULT-FIGURES fault={self.fault!r} applications={self.applications} in_flight={self.in_flight} "
                f"lost={self.lost} doubled={self.doubled} kafka_redelivered={self.redelivered} sms={self.sms} "
                f"webhook_503={self.webhook_503} api_retries={self.api_retries} "
                f"outage_s={span(self.fault_at, self.back_at)} recover_s={span(self.fault_at, self.recovered_at)} "
                f"settle_s={span(self.fault_at, self.settled_at)}")


class Driver:
    """Drives applications through `PATHS` as portals and officials would, tolerant of a platform
    that is down for a while: it retries what did not get an answer, as those clients do."""

    def __init__(self, platform: Platform, stack_env: dict[str, str], run_dir: Path, database_url: str,
                 figures: Figures, *, step_timeout: float = 900) -> None:
        self.platform = platform
        self.database_url = database_url
        self.keys = json.loads(stack_env["WEBHOOK_KEYS"])
        self.issuer = LocalIssuer.for_run_dir(run_dir, stack_env["OIDC_ISSUER"])
        self.tokens: dict[Official, str] = {}
        self.figures = figures
        self.step_timeout = step_timeout
        self.apps: dict[str, Application] = {}
        self.statuses: dict[str, str] = {}
        self.submitted = 0
        self.last_step_at = 0.0
        self.http: httpx.AsyncClient | None = None
        # With real-like providers (no local provider): the provider's delivery report of the
        # approval SMS, sent as that provider would (tests/faults: the lost-reply test).
        self.deliver: Callable[[Application], Awaitable[None]] | None = None
        self._extra: list[asyncio.Task[None]] = []
        self._watching: asyncio.Task[None] | None = None

    # -- plumbing --

    def token(self, who: Official) -> str:
        if who not in self.tokens:  # long enough for the slowest run
            self.tokens[who] = self.issuer.mint(subject=who.subject, roles=who.roles, programs=who.programs,
                                                window=who.window, name=who.subject, ttl_s=4 * 3600)
        return self.tokens[who]

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.platform.ports[service]}{path}"

    async def _retrying(self, what: str, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """The call until it gets an answer that is not a transient failure (connection refused
        while a process restarts, 503 while Kafka is away, a timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.step_timeout
        pause = 0.5
        while True:
            try:
                response = await call()
                if response.status_code not in TRANSIENT_STATUSES:
                    return response
                if response.status_code == 503 and "retry-after" in response.headers and "/webhooks/" in str(response.url):
                    self.figures.webhook_503 += 1
                    pause = min(float(response.headers["retry-after"]), 10.0)
                detail = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                detail = type(exc).__name__
            self.figures.api_retries += 1
            assert loop.time() < deadline, f"{what}: no answer within {self.step_timeout} s (last: {detail})"
            await asyncio.sleep(pause * random.uniform(0.8, 1.2))
            pause = min(pause * 1.5, 5.0)

    async def portal(self, event_type: str, app: Application, **data: Any) -> None:
        """The portal sends an event through the signed webhook until it is accepted (202)."""
        topic, source, build = events.EXAMPLES[event_type]
        payload = {**build(), **data, "application_no": app.no}
        envelope = events.envelope(event_type, payload, source=source, subject=app.no, event_id=f"evt-{uuid.uuid4().hex}")
        body = events.encode(envelope)
        slug = source.rsplit(":", 1)[1]
        assert self.http is not None

        def post() -> Awaitable[httpx.Response]:
            return self.http.post(self.url("intake", f"/webhooks/{slug}"), content=body, headers={
                "content-type": "application/cloudevents+json", "x-signature": sign(self.keys[slug], body),
                "x-timestamp": str(int(time.time()))})

        response = await self._retrying(f"{app.no} {event_type}", post)
        assert response.status_code == 202, f"{app.no} {event_type}: {response.status_code} {response.text[:300]}"

    async def act(self, who: Official, app: Application, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """An official's step, under one Idempotency-Key however often it is sent."""
        key = f"fault-{uuid.uuid4().hex}"
        assert self.http is not None

        def post() -> Awaitable[httpx.Response]:
            return self.http.post(self.url("review", path), json=body, headers={
                "authorization": f"Bearer {self.token(who)}", "idempotency-key": key})

        response = await self._retrying(f"{app.no} POST {path}", post)
        assert response.status_code == 200, f"{app.no} POST {path}: {response.status_code} {response.text[:300]}"
        return response.json()

    async def reach(self, app: Application, status: str) -> None:
        """Wait until review's read model shows `status` (what the official's task list shows)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.step_timeout
        while self.statuses.get(app.no) != status:
            assert loop.time() < deadline, f"{app.no} did not reach {status} (last seen {self.statuses.get(app.no)})"
            await asyncio.sleep(0.5)

    def progressed(self, app: Application) -> None:
        app.steps_done += 1
        now = time.monotonic()
        self.last_step_at = now
        f = self.figures
        if f.back_at is not None and f.recovered_at is None and now >= f.back_at:
            f.recovered_at = now

    async def _watch(self) -> None:
        """Review's read model of all applications, once a second (one query), through any fault.
        Every drive waits on what this sees, so nothing may stop it: a query gets 10 s, and
        whatever goes wrong (logged) costs the connection, never the watch (a rehearsal's fault
        level once sat idle for ten minutes with every application at its final status, and its
        drives still waiting)."""
        conn: asyncpg.Connection | None = None
        while True:
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.database_url, timeout=5)
                rows = await asyncio.wait_for(conn.fetch(
                    "SELECT application_no, status FROM review.applications WHERE application_no = ANY($1::text[])",
                    list(self.apps)), timeout=10)
                self.statuses.update({r["application_no"]: r["status"] for r in rows})
            except Exception as exc:  # noqa: BLE001 (see above)
                if not isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)):
                    print(f"watch: {type(exc).__name__}: {exc}", flush=True)
                if conn is not None:
                    conn.terminate()
                conn = None
            await asyncio.sleep(1.0)

    # -- the paths --

    def plan(self, n: int, *, first_path: int = 0) -> list[Application]:
        """`n` applications along the paths in turn, from the `first_path`-th (a steady load
        planning one at a time goes on where the last one left off)."""
        kinds = list(PATHS)
        apps = []
        for i in range(n):
            path = kinds[(first_path + i) % len(kinds)]
            program, expected = PATHS[path]
            prefix = "LG" if program == LG else "SZ"
            no = f"{prefix}2025-{random.randrange(1_000_000):06d}"
            while no in self.apps:
                no = f"{prefix}2025-{random.randrange(1_000_000):06d}"
            app = Application(no, path, program, expected, mobile=f"139{random.randrange(10**8):08d}")
            self.apps[no] = app
            apps.append(app)
        random.shuffle(apps)
        return apps

    def _lg_facts(self, app: Application) -> dict[str, Any]:
        facts = events.longgang_submitted()
        uscc = events.uscc("91440307MA5" + f"{random.randrange(1_000_000):06d}")
        contact = {**facts["applicant"]["contact"], "mobile": app.mobile}
        # Contracts and invoices of its own: the example's, claimed by every application, would make
        # each submission a duplicate claim of all the others (review flags each pair, ever slower).
        amount = facts["model_contracts"][0]["amount_fen"]
        contracts = [contract(f"HT-{app.no}", amount)]
        return {"program": LG, "applicant": {**facts["applicant"], "uscc": uscc, "contact": contact}, "model_contracts": contracts}

    def _sz_facts(self, app: Application) -> dict[str, Any]:
        facts = events.shenzhen_submitted()
        uscc = events.uscc("91440300MA5" + f"{random.randrange(1_000_000):06d}")
        contact = {**facts["applicant"]["contact"], "mobile": app.mobile}
        product = {**facts["product"], "name": f"政务智能问答平台{app.no[-6:]}"}
        return {"program": SZ, "applicant": {**facts["applicant"], "uscc": uscc, "contact": contact}, "product": product}

    async def _drive(self, app: Application) -> None:
        decisions = f"/api/applications/{app.no}/decisions"
        if app.program == LG:
            await self.portal(topics.LONGGANG_APPLICATION_SUBMITTED, app, **self._lg_facts(app))
            self.submitted += 1
            self.progressed(app)
            await self.reach(app, "online_review")
            if app.path == "lg_online":
                return
            if app.path == "lg_reject":
                await self.act(LG_ONLINE, app, decisions, {"decision": "reject", "reasons": ["合同材料不符合申报条件"]})
                self.progressed(app)
                return
            await self.act(LG_ONLINE, app, decisions, {"decision": "approve"})
            self.progressed(app)
            await self.reach(app, "awaiting_gd_submission")
            if app.path == "lg_gd":
                return
            form = await self._form(app)
            await self.portal(topics.GUANGDONG_SUBMISSION_RECEIVED, app, program=LG, form_id=form["form_id"],
                              form_sha256=form["sha256"], received_at=stamp(), gd_case_no=f"GD-2025-{app.no[-6:]}")
            self.progressed(app)
            await self.reach(app, "back_office_review")
            await self.act(LG_BACK, app, decisions, {"decision": "approve"})
            self.progressed(app)
            if self.deliver is not None:
                await self.deliver(app)
            await self.reach(app, "awaiting_paper")  # the approval SMS, accepted and reported delivered
            self.progressed(app)
            answer = await self.act(LG_CLERK, app, f"/api/applications/{app.no}/paper",
                                    {"copies": 2, "bound_and_stamped": True, "form_id": form["form_id"]})
            assert answer["status"] == "award_calculation", answer
            self.progressed(app)
            return
        await self.portal(topics.SHENZHEN_APPLICATION_SUBMITTED, app, **self._sz_facts(app))
        self.submitted += 1
        self.progressed(app)
        await self.reach(app, "formal_pre_review")
        if app.path == "sz_pre":
            return
        if app.path == "sz_withdraw":
            withdrawal = events.withdrawn(SZ, app.no)
            await self.portal(topics.SHENZHEN_APPLICATION_WITHDRAWN, app, **{**withdrawal, "withdrawn_at": stamp()})
        elif app.path == "sz_reject":
            await self.act(SZ_PRE, app, decisions, {"decision": "reject", "reasons": ["申报材料不符合要求"]})
        else:
            await self.act(SZ_PRE, app, decisions, {"decision": "approve"})
        self.progressed(app)

    async def report_delivery(self, app: Application) -> None:
        """The provider that took the approval SMS reports it delivered, through intake's webhook
        (`sms-<provider>`), as the real providers' callbacks do."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.step_timeout
        row = None
        while row is None:
            try:
                conn = await asyncpg.connect(self.database_url, timeout=5)
                try:
                    row = await conn.fetchrow(
                        """SELECT message_id::text AS message_id, provider FROM notify.sms_messages
                           WHERE application_no = $1 AND kind = 'back_office_approved' AND status = 'accepted'""", app.no)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                pass
            if row is None:
                assert loop.time() < deadline, f"{app.no}: the approval SMS was not accepted by a provider"
                await asyncio.sleep(1.0)
        slug = f"sms-{row['provider']}"
        assert slug in self.keys, f"{app.no}: the approval SMS went to {row['provider']}, which has no webhook key for its reports"
        body = json.dumps(delivery_receipt(row["message_id"], app.mobile, provider=row["provider"]), ensure_ascii=False).encode()
        assert self.http is not None

        def post() -> Awaitable[httpx.Response]:
            return self.http.post(self.url("intake", f"/webhooks/{slug}"), content=body, headers={
                "content-type": "application/cloudevents+json", "x-signature": sign(self.keys[slug], body),
                "x-timestamp": str(int(time.time()))})

        response = await self._retrying(f"{app.no} delivery report", post)
        assert response.status_code == 202, f"{app.no} delivery report: {response.status_code} {response.text[:300]}"

    async def _form(self, app: Application) -> asyncpg.Record:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.step_timeout
        while True:
            try:
                conn = await asyncpg.connect(self.database_url, timeout=5)
                try:
                    row = await conn.fetchrow("SELECT form_id, sha256 FROM review.forms WHERE application_no = $1 ORDER BY version DESC LIMIT 1", app.no)
                finally:
                    await conn.close()
                if row is not None:
                    return row
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                pass
            assert loop.time() < deadline, f"{app.no}: no watermarked form"
            await asyncio.sleep(1.0)

    async def _one(self, app: Application, gate: asyncio.Semaphore) -> None:
        async with gate:
            app.started = True
            try:
                await self._drive(app)
            except AssertionError as exc:
                app.error = str(exc)
            finally:
                app.finished = True

    def spawn(self, k: int) -> None:
        """`k` more applications submitted now, beside the others (not held back by the limit on
        how many run at once): portals go on sending while a part is down."""
        for app in self.plan(k):
            self.figures.applications += 1
            self._extra.append(asyncio.create_task(self._one(app, asyncio.Semaphore(1))))

    async def run(self, n: int, fault: Callable[[], Awaitable[None]], *, fault_after: float = 0.5,
                  concurrency: int = 24, submit_interval: float = 0.3) -> None:
        """Drive `n` applications; when `fault_after` of them are submitted, run `fault` (the drive
        goes on meanwhile, as clients would); then wait until every drive has ended."""
        apps = self.plan(n)
        self.figures.applications = n
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(90.0, connect=5.0)) as self.http:
            self._watching = asyncio.create_task(self._watch())
            drives = []
            try:
                faulted: asyncio.Task[None] | None = None
                for i, app in enumerate(apps):
                    drives.append(asyncio.create_task(self._one(app, gate)))
                    await asyncio.sleep(submit_interval)
                    if faulted is None and i + 1 >= int(n * fault_after):
                        faulted = asyncio.create_task(self._fault(fault))
                if faulted is None:
                    faulted = asyncio.create_task(self._fault(fault))
                await faulted
                await asyncio.gather(*drives, *self._extra)
            finally:
                for task in [*drives, *self._extra]:
                    task.cancel()
                await asyncio.gather(*drives, *self._extra, return_exceptions=True)
                self._watching.cancel()
                self.http = None

    async def _fault(self, fault: Callable[[], Awaitable[None]]) -> None:
        # Wait until work is really in flight: some applications past their first step.
        while self.submitted < 3:
            await asyncio.sleep(0.5)
        self.figures.in_flight = sum(1 for a in self.apps.values() if a.started and not a.finished)
        self.figures.fault_at = time.monotonic()
        print(f"fault {self.figures.fault!r}: {self.figures.in_flight} applications in flight", flush=True)
        await fault()
        self.figures.back_at = time.monotonic()
        print(f"fault {self.figures.fault!r}: back after {self.figures.back_at - self.figures.fault_at:.1f} s", flush=True)

    async def settle(self, timeout: float = 600) -> None:
        """Wait until every application shows its final status in review's read model."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        watching = asyncio.create_task(self._watch())
        try:
            while True:
                wrong = {a.no: (self.statuses.get(a.no), a.expected) for a in self.apps.values() if self.statuses.get(a.no) != a.expected}
                if not wrong or loop.time() > deadline:
                    break
                await asyncio.sleep(1.0)
        finally:
            watching.cancel()
        self.figures.settled_at = time.monotonic()


# --- what every fault test asserts -----------------------------------------------------------------


async def read_topic(bootstrap: str, topic: str, *, since_ms: int = 0) -> list[Any]:
    """Every record of `topic` (all partitions, from the beginning to the current end) written at
    or after `since_ms`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while pending:
            assert loop.time() < deadline, f"could not read {topic} to its end"
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, batch in batches.items():
                records += [r for r in batch if r.timestamp >= since_ms]
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
    return consumer.partitions_for_topic(topic) or set()


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


async def verify(driver: Driver, stack_env: dict[str, str], database_url: str, since_ms: int, *, outbox_timeout: float = 180,
                 sms_timeout: float = 300,
                 provider_sends: Callable[[], Counter[str]] | None = None) -> Verdict:
    """Everything a fault must not have broken; fills the figures (lost, doubled, SMS)."""
    verdict = Verdict()
    figures = driver.figures
    apps = driver.apps
    for app in apps.values():
        verdict.check(app.error is None, f"{app.no} ({app.path}): {app.error}")

    # 1. Every application in its final status, as an auditor reads it through the API.
    async with httpx.AsyncClient(timeout=60) as http:
        seen = {}
        for app in apps.values():
            response = await http.get(driver.url("review", f"/api/applications/{app.no}"),
                                      headers={"authorization": f"Bearer {driver.token(AUDITOR)}"})
            seen[app.no] = response.json().get("status") if response.status_code == 200 else f"HTTP {response.status_code}"
    wrong = {no: (status, apps[no].expected) for no, status in seen.items() if status != apps[no].expected}
    verdict.check(not wrong, f"{len(wrong)} applications not in their final status (seen, expected): {dict(list(wrong.items())[:10])}")

    # 2. The state-change topic: per application one chain of distinct events, no gap, no repeat.
    records = await read_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"], topics.APPLICATION_STATE_CHANGED, since_ms=since_ms)
    by_id: dict[str, dict[str, Any]] = {}
    copies: Counter[str] = Counter()
    for record in records:
        change = json.loads(record.value)
        if change["application_no"] in apps:
            by_id.setdefault(change["event_id"], change)
            copies[change["event_id"]] += 1
    figures.redelivered = sum(n - 1 for n in copies.values())
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for change in by_id.values():
        chains[change["application_no"]].append(change)
    lost = doubled = 0
    for app in apps.values():
        chain = sorted(chains.get(app.no, []), key=lambda c: c["occurred_at"])
        transitions = [(c["from_state"], c["to_state"]) for c in chain]
        repeated = [t for t, n in Counter((c.get("version"), c["from_state"], c["to_state"]) for c in chain).items() if n > 1]
        linked = all(a["to_state"] == b["from_state"] for a, b in zip(chain, chain[1:]))
        complete = bool(chain) and chain[0]["from_state"] in (None, "submitted") and chain[-1]["to_state"] == app.expected
        if repeated:
            doubled += 1
            verdict.check(False, f"{app.no}: state change(s) {repeated} on Kafka more than once (distinct event ids)")
        elif not (linked and complete):
            lost += 1
            verdict.check(False, f"{app.no} ({app.path}): state changes on Kafka not one chain to {app.expected}: {transitions}")

    # 3. Exactly one SMS per notice the lifecycle called for (the local provider's record).
    conn = await asyncpg.connect(database_url)
    try:
        notices = Counter((c["application_no"], c["notice_kind"]) for c in by_id.values() if c.get("notice_kind"))
        async def sends() -> dict[tuple[str, str], dict[str, int]]:
            rows = await conn.fetch(
                """SELECT m.message_id::text AS message_id, m.application_no, m.kind, m.status,
                          count(l.message_id) AS local_sends
                   FROM notify.sms_messages m LEFT JOIN notify.local_provider_messages l ON l.message_id = m.message_id::text
                   WHERE m.application_no = ANY($1::text[]) GROUP BY 1, 2, 3, 4""", list(apps))
            # Sends the providers accepted, per our message id: the local provider's table, or what
            # the test's fake providers counted (`provider_sends`).
            external = provider_sends() if provider_sends is not None else None
            found: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"sent": 0, "messages": 0, "unsettled": 0})
            for r in rows:
                entry = found[(r["application_no"], r["kind"])]
                entry["sent"] += external.get(r["message_id"], 0) if external is not None else r["local_sends"]
                entry["messages"] += 1
                entry["unsettled"] += r["status"] not in ("accepted", "delivered")
            return found

        # A message a killed sender had claimed waits for its lease to run out: wait for the SMS to
        # settle (bounded), then judge.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + sms_timeout
        while True:
            sms = await sends()
            if loop.time() > deadline or all(k in sms and sms[k]["sent"] >= 1 and not sms[k]["unsettled"] for k in notices):
                break
            await asyncio.sleep(1.0)
        figures.sms = sum(e["sent"] for e in sms.values())
        twice = {k: e["sent"] for k, e in sms.items() if e["sent"] > 1 or e["messages"] > 1}
        missing = [k for k in notices if k not in sms or sms[k]["sent"] != 1]
        unsettled = {k: e["unsettled"] for k, e in sms.items() if e["unsettled"]}
        verdict.check(not twice, f"SMS sent more than once: {twice}")
        verdict.check(not missing, f"notices without exactly one SMS: {missing[:10]} (of {len(notices)})")
        verdict.check(not unsettled, f"SMS not accepted: {unsettled}")
        doubled += len(twice)
        lost += len(missing)

        # 4. No dead letter (every event of the run was valid: any reason is a transient cause).
        dlq_rows = []
        for schema in SCHEMAS:
            dlq_rows += await conn.fetch(
                f"SELECT '{schema}' AS schema, topic, message_key, reason, left(detail, 200) AS detail FROM {schema}.dead_letters "
                "WHERE dead_lettered_at >= to_timestamp($1::double precision / 1000)", since_ms)
        verdict.check(not dlq_rows, f"dead-lettered: {[dict(r) for r in dlq_rows[:10]]}")

        # 5. Every outbox drained, nothing set aside.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + outbox_timeout
        while True:
            backlog = {s: await conn.fetchval(f"SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL") for s in SCHEMAS}
            if not any(backlog.values()) or loop.time() > deadline:
                break
            await asyncio.sleep(1.0)
        dead = {s: await conn.fetchval(f"SELECT count(*) FROM {s}.outbox_dead") for s in SCHEMAS}
        verdict.check(not any(backlog.values()), f"outbox not drained: {backlog}")
        verdict.check(not any(dead.values()), f"outbox rows set aside: {dead}")
    finally:
        await conn.close()
    dlq_topics = [t for t in topics.INBOUND_TOPICS + topics.PLATFORM_TOPICS]
    for topic in dlq_topics:
        dead_letters = await read_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"], topics.dlq(topic), since_ms=since_ms)
        reasons = Counter(dict(r.headers).get("x-dlq-reason", b"?").decode() for r in dead_letters)
        verdict.check(not dead_letters, f"{topics.dlq(topic)}: {dict(reasons)}")
    figures.lost, figures.doubled = lost, doubled
    return verdict
