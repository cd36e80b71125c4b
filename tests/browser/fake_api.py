"""A small stand-in for review's `/api` (the JSON shapes of issue 10's API as review serves them),
to look at the console's pages without the whole platform. The real stack's journeys are in
test_console_journeys.py; these pages tests only need answers of the right shape, the API's
refusals (403 / 404 / 409 / 422, Chinese messages) and token verification.

Scope rules follow services/review/api/access.py closely enough for the pages: a program outside
the token answers 404, a role without the action 403; an expert sees only assigned applications.
"""

from __future__ import annotations


from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, FastAPI, Header, Query
from fastapi.responses import JSONResponse

from subsidy.identity.claims import Principal, StaffRole
from subsidy.identity.http import Authenticated

SHANGHAI = ZoneInfo("Asia/Shanghai")
LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"
WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
R = StaffRole

STEP_OF_STATUS = {"online_review": ("online_review", R.LG_ONLINE_REVIEWER), "back_office_review": ("back_office_review", R.LG_BACK_OFFICE_REVIEWER),
                  "awaiting_paper": ("paper", R.WINDOW_CLERK), "formal_pre_review": ("formal_pre_review", R.SZ_PRE_REVIEWER),
                  "expert_scoring": ("expert_scoring", R.EXPERT), "tiering": ("tiering", R.PROGRAM_ADMIN),
                  "award_calculation": ("award", R.PROGRAM_ADMIN), "awaiting_publication": ("publication", R.PROGRAM_ADMIN)}
STEP_NAMES = {"online_review": "线上审核", "back_office_review": "后台审核", "paper": "纸质材料收件", "formal_pre_review": "形式预审",
              "expert_scoring": "专家评审", "tiering": "确定档次", "award": "核定资助金额", "publication": "公示",
              "confirm_notice_by_phone": "电话通知确认"}


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat() if moment else None


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


@dataclass
class Task:
    id: int
    application_no: str
    program: str
    step: str
    role: str
    opened_at: datetime
    deadline: datetime | None
    closed_at: datetime | None = None
    closed_by: str | None = None
    closed_to_status: str | None = None

    def item(self, now: datetime) -> dict[str, Any]:
        item = {"task_id": self.id, "application_no": self.application_no, "program": self.program, "step": self.step,
                "step_name": STEP_NAMES[self.step], "role": self.role, "assignee": None, "since": iso(self.opened_at),
                "deadline": iso(self.deadline), "deadline_weekday": WEEKDAYS[self.deadline.astimezone(SHANGHAI).weekday()] if self.deadline else None,
                "overdue": bool(self.deadline and not self.closed_at and self.deadline < now)}
        if self.closed_at:
            item.update(closed_at=iso(self.closed_at), closed_by=self.closed_by, closed_to_status=self.closed_to_status)
        return item


@dataclass
class App:
    no: str
    program: str
    status: str
    since: datetime
    deadline: datetime | None = None
    version: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)
    experts: list[str] = field(default_factory=list)
    award_fen: int | None = None


@dataclass
class World:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    apps: dict[str, App] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)  # Idempotency-Key -> answer

    def add(self, no: str, program: str, status: str, *, age_h: float = 30, deadline_h: float | None = 48) -> App:
        since = self.now - timedelta(hours=age_h)
        deadline = self.now + timedelta(hours=deadline_h) if deadline_h is not None else None
        app = App(no, program, status, since, deadline)
        portal = "portal:longgang-qyfw" if program == LG else "portal:sz-gdzwfw"
        app.history.append({"at": iso(since - timedelta(hours=2)), "kind": "state_change", "from": None, "to": "submitted", "reason": "首次提交", "by": portal, "deadline": None, "version": 1})
        first = "pre_check" if program == LG else "formal_pre_review"
        app.history.append({"at": iso(since - timedelta(hours=1)), "kind": "state_change", "from": "submitted", "to": first, "reason": None, "by": "review", "deadline": None, "version": 1})
        if status != first:
            app.history.append({"at": iso(since), "kind": "state_change", "from": first, "to": status, "reason": None, "by": "review", "deadline": iso(deadline), "version": 1})
        self.apps[no] = app
        self._open(app, since, deadline)
        return app

    def _open(self, app: App, at: datetime, deadline: datetime | None) -> None:
        spec = STEP_OF_STATUS.get(app.status)
        if spec:
            self.tasks.append(Task(len(self.tasks) + 1, app.no, app.program, spec[0], spec[1].value, at, deadline))

    def move(self, app: App, to: str, actor: str, *, reason: str | None = None, deadline: datetime | None = None) -> None:
        for t in self.tasks:
            if t.application_no == app.no and t.closed_at is None:
                t.closed_at, t.closed_by, t.closed_to_status = self.now, actor, to
        app.history.append({"at": iso(self.now), "kind": "state_change", "from": app.status, "to": to, "reason": reason,
                            "by": actor, "deadline": iso(deadline), "version": app.version})
        app.status, app.since, app.deadline = to, self.now, deadline
        self._open(app, self.now, deadline)

    def visible(self, principal: Principal, no: str) -> App:
        app = self.apps.get(no)
        if app is None or not principal.in_program(app.program):
            raise Refusal(404, "unknown_application", "未找到该申报")
        if principal.roles == {R.EXPERT} and principal.subject not in app.experts:
            raise Refusal(404, "unknown_application", "未找到该申报")
        return app

    def record(self, principal: Principal, action: str, app: App | None, body: dict[str, Any], outcome: str, reason: str | None = None) -> None:
        self.audit.append({"seq": len(self.audit) + 1, "occurred_at": iso(self.now), "subject": principal.subject,
                           "role": sorted(r.value for r in principal.roles)[0], "action": action,
                           "program": app.program if app else None, "application_no": app.no if app else None,
                           "input": body, "outcome": outcome, "reason": reason, "request_id": f"req-{len(self.audit) + 1}",
                           "hash": f"{len(self.audit) * 7919:064x}"})


def seeded() -> World:
    world = World()
    for i in range(1, 31):
        world.add(f"LG2025-{100 + i:06d}", LG, "online_review", age_h=100 - i, deadline_h=(-5 if i <= 3 else 20 + i))
    world.add("LG2025-000201", LG, "back_office_review", deadline_h=30)
    paper = world.add("LG2025-000301", LG, "awaiting_paper", deadline_h=70)
    paper.history.insert(-1, {"at": iso(paper.since - timedelta(minutes=30)), "kind": "decision", "action": "decide_online_review", "by": "staff:lg-online-01",
                              "subject": "lg-online-01", "role": "lg_online_reviewer", "input": {"decision": "approve", "reasons": []}, "to": "approved_online"})
    world.add("LG2025-000401", LG, "award_calculation", deadline_h=None)
    world.add("LG2025-000501", LG, "awaiting_publication", deadline_h=None).award_fen = 60_000_000
    world.add("LG2025-000502", LG, "published", deadline_h=None).award_fen = 120_000_000
    world.add("LG2025-000601", LG, "returned", deadline_h=26)
    world.add("LG2025-000701", LG, "abandoned", deadline_h=None)
    world.add("SZ2025-000101", SZ, "formal_pre_review", deadline_h=50)
    scoring = world.add("SZ2025-000201", SZ, "expert_scoring", deadline_h=120)
    scoring.experts = ["expert-01", "expert-02", "expert-03"]
    world.add("SZ2025-000301", SZ, "tiering", deadline_h=None)
    # a receipt recorded today at window LG-W03
    received = world.add("LG2025-000801", LG, "awaiting_paper", age_h=50, deadline_h=20)
    world.move(received, "award_calculation", "staff:lg-clerk-w03")
    return world


MATERIALS = [
    {"kind": "application_form", "name": "申报书", "file_id": "f-1", "filename": "申报书.pdf", "pages": 3, "sha256": "9f2c" * 16},
    {"kind": "business_license", "name": "营业执照", "file_id": "f-2", "filename": "营业执照.pdf", "pages": 3, "sha256": "1ab3" * 16},
    {"kind": "model_service_contract", "name": "模型服务合同", "file_id": "f-3", "filename": "模型服务合同-2025-018.pdf", "pages": 3, "sha256": "77de" * 16},
]


def application_view(world: World, app: App, principal: Principal) -> dict[str, Any]:
    checks = [
        ("registered_in_longgang", "三(一)1", True, "注册地与经营地均在龙岗区", "申报单位须在龙岗区注册并实际经营。", {"registered_district": "龙岗区", "operating_address": "龙岗区坂田街道"}),
        ("supplier_not_related", "三(二)3", True, "模型服务商与申报单位无关联关系", "模型服务合同的供应商不得为申报单位的关联方。", {"contracts": [{"contract_no": "HT-2025-018", "supplier_uscc": "91440300MA5F000001"}], "related_party_usccs": []}),
        ("materials_complete", "五(二)", app.no != "LG2025-000101", "缺少：项目负责人近三个月社保缴纳凭证" if app.no == "LG2025-000101" else "材料齐全",
         "申报材料须按指南清单提交齐全。", {"required": ["application_form", "business_license", "project_lead_social_insurance_3m"], "uploaded": ["application_form", "business_license"]}),
        ("no_duplicate_application", "三(一)4", True, "未发现重复申报或多头申报", "同一事项不得重复申报或多头申报区级专项资金（指南三(一)4）。", {"other_district_funds_for_same_item": False, "other_applications": ["LG2025-000102"]}),
    ] if app.program == LG else []
    now = world.now
    return {
        "application_no": app.no, "program": app.program, "status": app.status, "status_since": iso(app.since), "version": app.version,
        "deadline": iso(app.deadline), "deadline_weekday": None,
        "versions": [{"version": v, "submitted_at": iso(app.since - timedelta(hours=3 - v)), "materials": MATERIALS} for v in range(1, app.version + 1)],
        "pre_checks": [{"version": app.version, "rule": r, "clause": c, "passed": p, "detail": d, "explanation": e, "evidence": ev,
                        "ruleset_version": "lg-2025.3", "checked_at": iso(app.since)} for r, c, p, d, e, ev in checks],
        "duplicate_flags": None if not checks else {"flagged": False, "detail": "未发现重复申报或多头申报", "other_district_funds_for_same_item": False,
                                                     "other_applications": ["LG2025-000102"]},
        "history": sorted(app.history, key=lambda h: h["at"]),
        "tasks": [t.item(now) for t in world.tasks if t.application_no == app.no],
        "experts": [] if principal.roles == {R.EXPERT} else [{"expert": e, "assigned_by": "staff:sz-admin-01", "assigned_at": iso(app.since)} for e in app.experts],
        "refused": {"decisions": [], "events": [{"at": iso(app.since), "kind": "event", "what": "paper_received", "outcome": "refused",
                                                 "reason": "窗口不符：LG-W05 不是本申报的收件窗口", "by": "window:LG-W05"}] if app.status == "awaiting_paper" else []},
        "intake": {}, "sms": {"messages": [
            {"message_id": "m-1", "application_no": app.no, "program": app.program, "kind": "online_approved", "status": "delivered", "provider": "fake",
             "mobile_masked": "138****0001", "attempts": 1, "delivery_failures": 0, "text": "【龙岗区AI署】您的申报已通过线上终审，请于5个工作日内将纸质材料送至服务窗口。",
             "last_error": None, "created_at": iso(app.since), "sent_at": iso(app.since), "delivered_at": iso(app.since + timedelta(minutes=1))}
        ] if app.status in ("awaiting_paper", "award_calculation") else []},
    }


def create_api(world: World) -> APIRouter:
    api = APIRouter(prefix="/api")

    def key_of(key: str | None) -> str:
        if not key:
            raise Refusal(400, "idempotency_key_required", "缺少 Idempotency-Key 请求头")
        return key

    @api.get("/tasks")
    async def tasks(principal: Authenticated, program: str | None = None, step: str | None = None, overdue: bool | None = None,
                    closed: bool = False, sort: str = "deadline", page: int = Query(1, ge=1), page_size: int = Query(20, ge=1, le=100)) -> dict[str, Any]:
        roles = {r.value for r in principal.roles}
        if closed:
            rows = [t for t in world.tasks if t.closed_by == principal.actor_id]
        else:
            rows = [t for t in world.tasks if t.closed_at is None and t.role in roles and
                    (t.role != "expert" or principal.subject in world.apps[t.application_no].experts)]
        rows = [t for t in rows if t.program in principal.programs and (program is None or t.program == program)
                and (step is None or t.step == step) and (overdue is None or bool(t.deadline and t.deadline < world.now) == overdue)]
        far = datetime.max.replace(tzinfo=UTC)
        rows.sort(key=(lambda t: (t.deadline or far, t.opened_at)) if sort == "deadline" else (lambda t: t.opened_at))
        start = (page - 1) * page_size
        return {"total": len(rows), "page": page, "page_size": page_size, "items": [t.item(world.now) for t in rows[start:start + page_size]]}

    @api.get("/applications/{no}")
    async def application(no: str, principal: Authenticated) -> dict[str, Any]:
        return application_view(world, world.visible(principal, no), principal)

    def take(principal: Principal, no: str, key: str, action: str, role: StaffRole, statuses: set[str], body: dict[str, Any], effect) -> dict[str, Any]:
        if key in world.answers:
            return world.answers[key]
        app = world.visible(principal, no)
        try:
            if not principal.has(role):
                raise Refusal(403, "forbidden", "您的角色无权执行此操作")
            if app.status not in statuses:
                raise Refusal(409, "wrong_state", "该申报当前不在可办理此操作的环节")
            answer = effect(app)
        except Refusal as refusal:
            world.record(principal, action, app, body, "refused", refusal.code)
            raise
        world.record(principal, action, app, body, "accepted")
        app.history.append({"at": iso(world.now), "kind": "decision", "action": action, "by": principal.actor_id, "subject": principal.subject,
                            "role": role.value, "input": body, "to": app.status})
        world.answers[key] = answer
        return answer

    @api.post("/applications/{no}/decisions")
    async def decide(no: str, principal: Authenticated, body: dict[str, Any] = Body(...), key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        app = world.visible(principal, no)
        action, role, statuses = {"online_review": ("decide_online_review", R.LG_ONLINE_REVIEWER, {"online_review"}),
                                  "back_office_review": ("decide_back_office_review", R.LG_BACK_OFFICE_REVIEWER, {"back_office_review"}),
                                  "formal_pre_review": ("decide_formal_pre_review", R.SZ_PRE_REVIEWER, {"formal_pre_review"})}.get(
            app.status, ("decide", R.LG_ONLINE_REVIEWER if app.program == LG else R.SZ_PRE_REVIEWER, set()))

        def effect(app: App) -> dict[str, Any]:
            decision = body.get("decision")
            if decision == "return":
                if not body.get("reasons") or not body.get("resubmit_by"):
                    raise Refusal(422, "invalid", "退回修改须写明理由和重新提交截止日期")
                day = date.fromisoformat(body["resubmit_by"])
                if day < world.now.astimezone(SHANGHAI).date():
                    raise Refusal(422, "invalid", "重新提交截止日期不能早于今天")
                world.move(app, "returned", principal.actor_id, reason="；".join(body["reasons"]), deadline=datetime.combine(day, time(18), tzinfo=SHANGHAI))
            elif decision == "reject":
                world.move(app, "rejected", principal.actor_id, reason="；".join(body.get("reasons") or []))
            elif decision == "approve":
                nxt = {"online_review": "approved_online", "back_office_review": "awaiting_paper", "formal_pre_review": "expert_scoring"}[app.status]
                world.move(app, nxt, principal.actor_id, deadline=world.now + timedelta(days=7) if nxt == "awaiting_paper" else None)
            else:
                raise Refusal(422, "invalid", "不支持的审核决定")
            return {"status": app.status, "deadline": iso(app.deadline)}

        return take(principal, no, key_of(key), action, role, statuses, body, effect)

    @api.post("/applications/{no}/paper")
    async def paper(no: str, principal: Authenticated, body: dict[str, Any] = Body(...), key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        def effect(app: App) -> dict[str, Any]:
            if not body.get("bound_and_stamped"):
                raise Refusal(422, "invalid", "纸质材料须装订并加盖公章")
            world.move(app, "award_calculation" if app.program == LG else "expert_scoring", principal.actor_id)
            return {"status": app.status, "deadline": None}

        return take(principal, no, key_of(key), "record_paper_receipt", R.WINDOW_CLERK, {"awaiting_paper"}, body, effect)

    @api.post("/applications/{no}/award")
    async def award(no: str, principal: Authenticated, body: dict[str, Any] = Body(...), key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        def effect(app: App) -> dict[str, Any]:
            app.award_fen = int(body["award_fen"])
            world.move(app, "awaiting_publication", principal.actor_id)
            return {"status": app.status, "deadline": None}

        return take(principal, no, key_of(key), "record_award", R.PROGRAM_ADMIN, {"award_calculation"}, body, effect)

    @api.post("/programs/{program}/publication")
    async def publish(program: str, principal: Authenticated, body: dict[str, Any] = Body(default_factory=dict),
                      key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        if key_of(key) in world.answers:
            return world.answers[key]
        if not principal.in_program(program):
            raise Refusal(404, "program_not_found", "未找到该项目")
        if not principal.has(R.PROGRAM_ADMIN):
            raise Refusal(403, "forbidden", "只有项目管理员可以发布公示")
        listed = [a for a in world.apps.values() if a.program == program and a.status == "awaiting_publication"]
        for app in listed:
            world.move(app, "published", principal.actor_id)
        answer = {"notice_id": f"GS-{world.now.astimezone(SHANGHAI):%Y%m%d%H%M%S}", "entries": len(listed),
                  "total_award_fen": sum(a.award_fen or 0 for a in listed)}
        world.answers[key] = answer
        return answer

    @api.get("/programs/{program}/dashboard")
    async def dashboard(program: str, principal: Authenticated) -> dict[str, Any]:
        if not principal.in_program(program):
            raise Refusal(404, "program_not_found", "未找到该项目")
        if not principal.any_of((R.PROGRAM_ADMIN, R.AUDITOR)):
            raise Refusal(403, "forbidden", "只有项目管理员和审计人员可以查看工作台")
        apps = [a for a in world.apps.values() if a.program == program]
        by_status: dict[str, int] = {}
        for a in apps:
            by_status[a.status] = by_status.get(a.status, 0) + 1
        open_tasks = [t for t in world.tasks if t.program == program and t.closed_at is None]
        by_step: dict[str, dict[str, int]] = {}
        for t in open_tasks:
            entry = by_step.setdefault(t.step, {"open": 0, "overdue": 0})
            entry["open"] += 1
            entry["overdue"] += int(bool(t.deadline and t.deadline < world.now))
        today = world.now.astimezone(SHANGHAI).date()
        week_end = today + timedelta(days=6 - today.weekday())
        due = [t.deadline.astimezone(SHANGHAI).date() for t in open_tasks if t.deadline and t.deadline >= world.now]
        awarded = [a for a in apps if a.award_fen]
        return {"program": program, "as_of": iso(world.now), "applications_by_status": by_status, "open_tasks": len(open_tasks),
                "open_tasks_by_step": by_step, "overdue_tasks": sum(v["overdue"] for v in by_step.values()),
                "deadlines_today": sum(d == today for d in due), "deadlines_this_week": sum(d <= week_end for d in due),
                "awards": {"count": len(awarded), "total_fen": sum(a.award_fen or 0 for a in awarded),
                           "budget_fen": 1_000_000_000 if program == LG else None}}

    @api.get("/audit")
    async def audit(principal: Authenticated, application_no: str | None = None, actor: str | None = None, action: str | None = None,
                    since: str | None = Query(None, alias="from"), until: str | None = Query(None, alias="to"),
                    page: int = 1, page_size: int = 50) -> dict[str, Any]:
        if not principal.has(R.AUDITOR):
            raise Refusal(403, "forbidden", "只有审计人员可以查看审计日志")
        rows = [r for r in reversed(world.audit) if (r["program"] in principal.programs) and (application_no is None or r["application_no"] == application_no)
                and (actor is None or r["subject"] == actor) and (action is None or r["action"] == action)
                and (since is None or r["occurred_at"] >= since) and (until is None or r["occurred_at"] < until)]
        start = (page - 1) * page_size
        return {"total": len(rows), "page": page, "page_size": page_size, "items": rows[start:start + page_size]}

    @api.get("/audit/verify")
    async def verify(principal: Authenticated) -> dict[str, Any]:
        if not principal.has(R.AUDITOR):
            raise Refusal(403, "forbidden", "只有审计人员可以校验审计链")
        return {"intact": True, "count": len(world.audit), "first_bad_seq": None, "reason": None, "checked_at": iso(world.now)}

    return api


def install(app: FastAPI, world: World) -> None:
    app.include_router(create_api(world))

    @app.exception_handler(Refusal)
    async def refused(_: Any, exc: Refusal) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message, "detail": None}, status_code=exc.status)



