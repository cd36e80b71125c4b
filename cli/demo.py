"""`subsidy demo`: both programs end to end on the platform `subsidy up` runs.

    subsidy demo            sample applications of both programs, as the portals send them: some on
                            Kafka, some over the signed webhook (HMAC-SHA256 with the stack's dev
                            webhook keys), and one bad event; then shows each arriving (its status
                            through intake's API) and the bad one's dead-letter record
    subsidy demo --drive    then acts as every official through review's API (tokens from the local
                            issuer, one per role), as the Guangdong portal (the watermarked form's id
                            and SHA-256, fetched from review's /forms/{id}) and as the window clerk,
                            as three experts scoring with their own tokens, until both programs'
                            applications are on a final public notice (已公示); the SMS delivery
                            receipts come from notify's local provider by themselves

Everything goes through what the platform offers the outside world (Kafka topics, the webhook,
the HTTP APIs with bearer tokens); nothing here calls Temporal. The database is touched where an
operator's command would: the dead-letter record is read (`subsidy dlq list` reads the same table),
and `--drive` imports the expert registry the way `subsidy reference import experts FILE.csv` does.
The Longgang award and the Shenzhen tiers and amounts are computed by the platform; the demo's
administrators confirm them. Each list is published as put up PUBLISHED_DAYS_AGO days ago (its
period over), so both programs reach 已公示 at once; the demo says so when it publishes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"  # as in cli/demo_data.py (imported when the demo runs:
# the parser of every `subsidy` command is built at each start, so this module stays light)

DEFAULT_TIMEOUT_S = 120.0
PUBLISHED_DAYS_AGO = 30  # `--drive` publishes each list as put up that long ago: its period is over at once
POLL_S = 0.3


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="sample applications of both programs, end to end (--drive: every official's step)")
    demo.add_argument("--drive", action="store_true", help="then take every human step, to the public notice")
    demo.add_argument("--run-dir", help="run directory (default .run/ or SUBSIDY_RUN_DIR)")
    demo.add_argument("--intake-url", help="intake's address (default: the one `subsidy up` started)")
    demo.add_argument("--review-url", help="review's address (default: the one `subsidy up` started)")
    demo.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds each wait may take (default 120)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.operator import OperatorError
    from deploy.embedded.stack import default_run_dir

    run_dir = Path(args.run_dir).resolve() if args.run_dir else default_run_dir()
    try:
        platform = Platform.find(run_dir, intake_url=args.intake_url, review_url=args.review_url, timeout=args.timeout)
        return asyncio.run(Demo(platform).run(drive=args.drive))
    except OperatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DemoFailed as exc:
        print(f"demo stopped: {exc}", file=sys.stderr)
        return 1


class DemoFailed(Exception):
    """A step did not come out as the platform promises (printed, exit 1)."""


def say(text: str = "") -> None:
    print(text, flush=True)


# --- the platform, as the outside world sees it ------------------------------------------------------


@dataclass(frozen=True)
class Official:
    subject: str
    name: str
    role: str
    program: str
    window: str | None = None


OFFICIALS = {
    "lg_online": Official("lg-online-01", "龙岗线上审核员（演示）", "lg_online_reviewer", LG),
    "lg_back": Official("lg-back-01", "龙岗后台审核员（演示）", "lg_back_office_reviewer", LG),
    "lg_clerk": Official("lg-clerk-w03", "龙岗第3窗口收件员（演示）", "window_clerk", LG, "LG-W03"),
    "lg_admin": Official("lg-admin-01", "龙岗项目管理员（演示）", "program_admin", LG),
    "sz_pre": Official("sz-pre-01", "市政数局形式预审员（演示）", "sz_pre_reviewer", SZ),
    "sz_clerk": Official("sz-clerk-civic-west", "市民中心西区收件员（演示）", "window_clerk", SZ, "SZ-CIVIC-CENTER-WEST"),
    "sz_admin": Official("sz-admin-01", "深圳项目管理员（演示）", "program_admin", SZ),
    # The local issuer's dev experts (deploy/embedded/dev_users.py), each scoring with their own token.
    "sz_expert_1": Official("expert-01", "评审专家刘洋（演示）", "expert", SZ),
    "sz_expert_2": Official("expert-02", "评审专家陈晨（演示）", "expert", SZ),
    "sz_expert_3": Official("expert-03", "评审专家杨帆（演示）", "expert", SZ),
}


@dataclass
class Platform:
    run_dir: Path
    env: dict[str, str]
    intake: str
    review: str
    timeout: float
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls, run_dir: Path, *, intake_url: str | None, review_url: str | None, timeout: float) -> Platform:
        from cli.operator import OperatorError, service_url, stack_env

        env = stack_env(run_dir)
        for needed in ("KAFKA_BOOTSTRAP_SERVERS", "WEBHOOK_KEYS", "OIDC_ISSUER", "DATABASE_URL"):
            if needed not in env:
                raise OperatorError(f"no {needed} in {run_dir}/stack.json: run `subsidy up` first")
        return cls(run_dir, env, service_url(run_dir, "intake", intake_url), service_url(run_dir, "review", review_url), timeout)

    def operator_token(self) -> str:
        from cli.operator import operator_token

        return operator_token(self.run_dir)

    def token(self, who: Official) -> str:
        from cli.operator import local_issuer

        if who.subject not in self.tokens:
            self.tokens[who.subject] = local_issuer(self.run_dir).mint(
                subject=who.subject, name=who.name, roles=[who.role], programs=[who.program], window=who.window, ttl_s=3600)
        return self.tokens[who.subject]


async def until(what: str, probe: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    """`probe()` again every POLL_S until it returns something truthy; DemoFailed after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(POLL_S)


# --- the demo -------------------------------------------------------------------------------------


@dataclass
class Sent:
    application_no: str
    program: str
    channel: str
    expected: str  # the status it reaches by itself (the first human step)


class Demo:
    def __init__(self, platform: Platform) -> None:
        from cli import demo_data

        self.data = demo_data
        self.p = platform
        self.run_id = self.data.demo_run_id()
        self.last_status: dict[str, str | None] = {}

    def no(self, program: str, n: int) -> str:
        # The contract's shape LG2025-000123 (subsidy/contracts/workflow_ids.py); demo numbers start with 9.
        return f"{'LG' if program == LG else 'SZ'}2025-9{self.run_id}{n}"

    async def run(self, *, drive: bool) -> int:
        import httpx
        from aiokafka import AIOKafkaProducer

        self.http = httpx.AsyncClient(timeout=30)
        self.producer = AIOKafkaProducer(bootstrap_servers=self.p.env["KAFKA_BOOTSTRAP_SERVERS"], enable_idempotence=True)
        await self.producer.start()
        try:
            sent, bad = await self.send_all()
            await self.show_arrivals(sent)
            await self.show_dead_letter(bad)
            if drive:
                lg = next(s for s in sent if s.program == LG and s.channel == "Kafka")
                sz = next(s for s in sent if s.program == SZ and s.channel == "Kafka")
                await self.drive_longgang(lg.application_no)
                await self.drive_shenzhen(sz.application_no)
                say(f"\nDone: {lg.application_no} {self.data.status_zh(self.last_status.get(lg.application_no))}, "
                    f"{sz.application_no} {self.data.status_zh(self.last_status.get(sz.application_no))}. The history of each: "
                    "`subsidy status <no>`; every official's step is in review's audit log (GET /api/audit, auditor token).")
            else:
                say("\nNext: `subsidy demo --drive` takes an application of each program through every official's step.")
            return 0
        finally:
            await self.producer.stop()
            await self.http.aclose()

    # --- sending, as the portals do -------------------------------------------------------------

    async def send_all(self) -> tuple[list[Sent], str]:
        from subsidy.contracts import topics

        say(f"Demo run {self.run_id}: sample applications as the portals send them "
            f"(submitted_at inside each program's 2025 filing window, which intake judges by that stamp)")
        plan = [
            (LG, 1, "Kafka", "online_review"), (LG, 2, "webhook", "online_review"),
            (SZ, 1, "Kafka", "formal_pre_review"), (SZ, 2, "webhook", "formal_pre_review"),
        ]
        sent: list[Sent] = []
        for program, n, channel, expected in plan:
            no = self.no(program, n)
            if program == LG:
                topic, kind, payload = topics.PORTAL_LONGGANG_APPLICATIONS, topics.LONGGANG_APPLICATION_SUBMITTED, self.data.longgang_application(no, n)
            else:
                topic, kind, payload = topics.PORTAL_SHENZHEN_APPLICATIONS, topics.SHENZHEN_APPLICATION_SUBMITTED, self.data.shenzhen_application(no, n)
            event = self.data.envelope(kind, topic, payload)
            how = await (self.kafka(topic, event) if channel == "Kafka" else self.webhook(topic, event))
            say(f"  sent {no}  {program}  {payload['applicant']['name']}  {how}")
            sent.append(Sent(no, program, channel, expected))

        bad_no = self.no(LG, 9)
        bad = self.data.envelope(topics.LONGGANG_APPLICATION_SUBMITTED, topics.PORTAL_LONGGANG_APPLICATIONS,
                            self.data.with_bad_uscc(self.data.longgang_application(bad_no, 9)))
        how = await self.kafka(topics.PORTAL_LONGGANG_APPLICATIONS, bad)
        say(f"  sent {bad_no}  {LG}  a USCC with a wrong check character (a bad event)  {how}")
        return sent, bad_no

    async def kafka(self, topic: str, event: dict[str, Any]) -> str:
        await self.producer.send_and_wait(topic, json.dumps(event, ensure_ascii=False).encode(), key=event["subject"].encode())
        return f"on Kafka {topic}"

    async def webhook(self, topic: str, event: dict[str, Any]) -> str:
        slug = self.data.SOURCES[topic][1]
        key = json.loads(self.p.env["WEBHOOK_KEYS"])[slug]
        body = json.dumps(event, ensure_ascii=False).encode()
        signature = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        response = await self.http.post(f"{self.p.intake}/webhooks/{slug}", content=body, headers={
            "content-type": "application/cloudevents+json", "x-timestamp": str(int(time.time())),
            "x-signature": f"sha256={signature}"})
        if response.status_code != 202:
            raise DemoFailed(f"the webhook refused {event['subject']}: {response.status_code} {response.text[:300]}")
        return f"over the signed webhook POST /webhooks/{slug} -> 202"

    # --- what became of them --------------------------------------------------------------------

    async def intake_view(self, no: str) -> dict[str, Any] | None:
        response = await self.http.get(f"{self.p.intake}/applications/{no}",
                                       headers={"authorization": f"Bearer {self.p.operator_token()}"})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DemoFailed(f"intake answered {response.status_code} for {no}: {response.text[:300]}")
        return response.json()

    async def show_arrivals(self, sent: list[Sent]) -> None:
        say("\nArriving (intake's API, GET /applications/{no}, as `subsidy status` reads it):")
        for s in sent:
            async def settled(s: Sent = s) -> dict[str, Any] | None:
                view = await self.intake_view(s.application_no)
                return view if view and view.get("status") == s.expected else None

            view = await until(f"{s.application_no} reaching {s.expected}", settled, self.p.timeout)
            say(f"  {s.application_no}  via {s.channel:<7}  {self.data.status_zh(view['status'])}"
                f"  ({len(view.get('versions', []))} version, {len(view.get('history', []))} history entries)")

    async def show_dead_letter(self, bad_no: str) -> None:
        import asyncpg

        async def record() -> Any:
            conn = await asyncpg.connect(self.p.env["DATABASE_URL"])
            try:
                return await conn.fetchrow(
                    "SELECT topic, kafka_offset, reason, detail FROM intake.dead_letters WHERE message_key = $1", bad_no)
            finally:
                await conn.close()

        row = await until(f"the dead-letter record of {bad_no}", record, self.p.timeout)
        stored = await self.intake_view(bad_no)
        say(f"\nThe bad event: {bad_no} went to {row['topic']}.dlq (offset {row['kafka_offset']}), "
            f"reason {row['reason']}: {row['detail']}")
        say(f"  intake stored {'nothing' if stored is None else 'it (unexpected!)'}; `subsidy dlq list` lists it")
        if stored is not None:
            raise DemoFailed(f"{bad_no} was stored although its USCC is invalid")

    # --- officials, through review's API ----------------------------------------------------------

    async def api(self, who: Official, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.p.token(who)}"}
        if method == "POST":
            headers["idempotency-key"] = f"demo-{uuid.uuid4().hex}"
        response = await self.http.request(method, f"{self.p.review}{path}", json=body, headers=headers)
        if response.status_code != 200:
            raise DemoFailed(f"{who.name} {method} {path}: {response.status_code} {response.text[:400]}")
        return response.json()

    async def review_status(self, who: Official, no: str) -> str | None:
        response = await self.http.get(f"{self.p.review}/api/applications/{no}",
                                       headers={"authorization": f"Bearer {self.p.token(who)}"})
        return response.json().get("status") if response.status_code == 200 else None

    async def reach(self, who: Official, no: str, status: str) -> None:
        async def there() -> bool:
            return await self.review_status(who, no) == status
        await until(f"{no} reaching {status}", there, self.p.timeout)
        if self.last_status.get(no) != status:
            say(f"      -> {self.data.status_zh(status)}")
        self.last_status[no] = status

    async def task(self, who: Official, no: str, step: str) -> dict[str, Any]:
        async def listed() -> dict[str, Any] | None:
            page = await self.api(who, "GET", f"/api/tasks?step={step}&page_size=100")
            return next((t for t in page["items"] if t["application_no"] == no), None)
        found = await until(f"the {step} task of {no} in {who.name}'s list", listed, self.p.timeout)
        say(f"    {who.name} ({who.role}) sees the task 「{found.get('step_name', step)}」 in 待办")
        return found

    async def step(self, who: Official, what: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.api(who, "POST", path, body)
        status = answer.get("status")
        # The deadline an answer carries matters where the enterprise now has to act.
        deadline = f", deadline {answer['deadline']}" if answer.get("deadline") and status in ("awaiting_paper", "returned") else ""
        say(f"    {who.name}: {what} -> {self.data.status_zh(status) if status else 'done'}{deadline}")
        self.last_status[path.split("/")[3]] = status
        return answer

    async def drive_longgang(self, no: str) -> None:
        from subsidy.contracts import topics

        o = OFFICIALS
        say(f"\n龙岗 {LG}: {no}")
        await self.task(o["lg_online"], no, "online_review")
        await self.step(o["lg_online"], "线上审核 通过 (approve)", f"/api/applications/{no}/decisions", {"decision": "approve"})
        await self.reach(o["lg_online"], no, "awaiting_gd_submission")

        form_id = f"WF-{no}-V1"  # services/review/forms: the form of version 1
        response = await self.http.get(f"{self.p.review}/forms/{form_id}", headers={"authorization": f"Bearer {self.p.token(o['lg_back'])}"})
        if response.status_code != 200:
            raise DemoFailed(f"review's /forms/{form_id}: {response.status_code} {response.text[:300]}")
        digest = hashlib.sha256(response.content).hexdigest()
        if digest != response.headers.get("x-content-sha256"):
            raise DemoFailed(f"the form's bytes do not match its X-Content-SHA256 ({form_id})")
        say(f"    the enterprise downloads the watermarked form {form_id} ({len(response.content)} bytes, SHA-256 {digest[:12]}...)")
        event = self.data.envelope(topics.GUANGDONG_SUBMISSION_RECEIVED, topics.PORTAL_GUANGDONG_SUBMISSIONS,
                              self.data.guangdong_submission(no, form_id, digest))
        how = await self.webhook(topics.PORTAL_GUANGDONG_SUBMISSIONS, event)
        say(f"    广东政务服务网 reports the submission naming that form and hash, {how}")

        await self.task(o["lg_back"], no, "back_office_review")
        await self.step(o["lg_back"], "后台审核 通过 (approve)", f"/api/applications/{no}/decisions", {"decision": "approve"})
        say("    notify texts the approval; the local SMS provider reports its delivery (the paper clock starts then)")
        await self.reach(o["lg_back"], no, "awaiting_paper")

        await self.task(o["lg_clerk"], no, "paper")
        await self.step(o["lg_clerk"], "纸质材料 2份，已装订盖章 (paper received at LG-W03)", f"/api/applications/{no}/paper",
                        {"copies": 2, "bound_and_stamped": True, "form_id": form_id})
        await self.task(o["lg_admin"], no, "award")
        computed = await self.api(o["lg_admin"], "GET", f"/api/applications/{no}/award")
        eligible = computed.get("breakdown", {}).get("eligible_total_fen")
        say(f"    the platform computed the award: {computed['computed_fen'] / 100:,.2f} 元"
            + (f" (30% of the eligible {eligible / 100:,.2f})" if eligible is not None else ""))
        award = await self.step(o["lg_admin"], f"确认补贴金额 {computed['computed_fen'] / 100:,.2f} 元 (confirm the computed award)",
                                f"/api/applications/{no}/award/confirm", {})
        if award.get("award_fen") != computed["computed_fen"]:
            say(f"    (confirmed {award.get('award_fen', 0) / 100:,.2f} 元: the enterprise's yearly cap left less)")
        await self.task(o["lg_admin"], no, "publication")
        await self.publish(o["lg_admin"], LG, no)

    async def drive_shenzhen(self, no: str) -> None:
        o = OFFICIALS
        say(f"\n深圳 {SZ}: {no}")
        await self.task(o["sz_pre"], no, "formal_pre_review")
        await self.step(o["sz_pre"], "形式预审: 请预约提交纸质材料 (request_paper)", f"/api/applications/{no}/decisions",
                        {"decision": "request_paper", "reasons": ["请预约到市民中心西区窗口提交纸质材料"]})
        await self.task(o["sz_clerk"], no, "paper")
        await self.step(o["sz_clerk"], "纸质材料 1份，已装订盖章 (paper at 市民中心西区)", f"/api/applications/{no}/paper",
                        {"copies": 1, "bound_and_stamped": True})
        await self.task(o["sz_pre"], no, "formal_pre_review")
        await self.step(o["sz_pre"], "形式预审 通过 (approve)", f"/api/applications/{no}/decisions", {"decision": "approve"})
        await self.reach(o["sz_admin"], no, "expert_scoring")
        imported = await self.import_experts()
        say(f"    operator: expert registry imported as `subsidy reference import experts` does "
            f"({imported} experts, the local issuer's dev experts)")
        panel = [o[f"sz_expert_{i}"] for i in (1, 2, 3)]
        await self.step(o["sz_admin"], f"指派专家 {', '.join(e.subject for e in panel)}", f"/api/applications/{no}/experts",
                        {"experts": [e.subject for e in panel]})
        points = self.data.DEMO_SCORES
        for expert in panel:
            await self.task(expert, no, "expert_scoring")
            await self.step(expert, f"评分 实用性{points['practicality']} 创新性{points['innovation']} "
                                    f"可复制推广性{points['replicability']}", f"/api/applications/{no}/scores",
                            self.data.expert_scores(expert.name))
        await self.reach(o["sz_admin"], no, "tiering")
        await self.task(o["sz_admin"], no, "tiering")
        proposal = await self.api(o["sz_admin"], "GET", f"/api/programs/{SZ}/tiering")
        everyone = [p["application_no"] for p in proposal.get("products", [])]
        confirmed = await self.api(o["sz_admin"], "POST", f"/api/programs/{SZ}/tiering/confirm", {"applications": everyone})
        mine = next((e for e in confirmed.get("confirmed", []) if e["application_no"] == no), None)
        if mine is None:
            raise DemoFailed(f"tiering/confirm did not confirm {no}: {json.dumps(confirmed, ensure_ascii=False)[:400]}")
        say(f"    {o['sz_admin'].name}: 确认定档 (confirm the platform's tiers, {len(everyone)} product(s)) -> "
            f"{no}: 第{mine.get('tier')}档, 补贴 {mine.get('award_fen', 0) / 100:,.2f} 元")
        await self.reach(o["sz_admin"], no, "awaiting_publication")
        await self.task(o["sz_admin"], no, "publication")
        await self.publish(o["sz_admin"], SZ, no)

    async def import_experts(self) -> int:
        """The expert registry, imported the way `subsidy reference import experts FILE.csv` does
        (cli/reference.py: parsed whole by review's importer, kept as a new version of the list)."""
        import asyncpg

        from services.review import repository
        from services.review.reference.importer import import_reference

        parsed = import_reference("experts", self.data.experts_csv())
        rows = [row.model_dump(mode="json") for row in parsed.rows]
        conn = await asyncpg.connect(self.p.env["DATABASE_URL"])
        try:
            async with conn.transaction():
                await repository.store_reference(conn, parsed.kind, parsed.version, rows, "operator:subsidy-demo")
        finally:
            await conn.close()
        return len(rows)

    async def publish(self, admin: Official, program: str, no: str) -> None:
        """Publish the program's list. The notice is recorded as having gone up PUBLISHED_DAYS_AGO days
        ago (as bureaus record a notice put on their website earlier): its period, counted from then,
        is over, so the list is final at once instead of after 5-7 working days."""
        starts_at = (datetime.now(UTC) - timedelta(days=PUBLISHED_DAYS_AGO)).isoformat()
        published = await self.api(admin, "POST", f"/api/programs/{program}/publication", {"starts_at": starts_at})
        say(f"    {admin.name}: 发布公示 (publish the list) -> {published.get('entries')} application(s) on the notice; "
            f"公示期按 {PUBLISHED_DAYS_AGO} 天前开始计算 (the period is counted from {PUBLISHED_DAYS_AGO} days ago, "
            f"so it has ended and the list is final now)")
        await self.reach(admin, no, "published")
