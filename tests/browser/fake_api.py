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
    award_reason: str | None = None
    declined: dict[str, str] = field(default_factory=dict)  # expert -> the conflict they declared
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # expert -> {criterion: {points, justification}}
    flags: list[dict[str, Any]] = field(default_factory=list)  # duplicate / multi-source claim flags (duplicates/service.py flag_view)
    score: str | None = None  # the panel's result, once complete
    tier: int | None = None


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
        if principal.roles == {R.EXPERT} and (principal.subject not in app.experts or principal.subject in app.declined):
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
    world.apps["LG2025-000101"].flags.append({
        "flag_id": 7, "kind": "invoice", "kind_name": "同一发票", "clause": "三(一)4", "key": "25442000000012345678",
        "message": "发票 25442000000012345678 同时出现在另一申报单位的申报中", "acknowledged": False, "acknowledged_by": None,
        "acknowledged_at": None, "note": None, "flagged_at": iso(world.now),
        "others": [{"program": LG, "application_no": "LG2025-000102", "applicant_uscc": "91440307MA5H000009",
                    "applicant_name": "深圳市另一示例科技有限公司", "declarations": {}}]})
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
    scoring.scores["expert-02"] = {c: {"points": p, "justification": "（专家二的评分理由，专家一不可见）"} for c, p in
                                   (("practicality", 90), ("innovation", 80), ("replicability", 70))}
    unassigned = world.add("SZ2025-000202", SZ, "expert_scoring", deadline_h=120)  # no panel yet: the administrator's task
    world.tasks.append(Task(len(world.tasks) + 1, unassigned.no, SZ, "expert_scoring", R.PROGRAM_ADMIN.value, unassigned.since, None))
    tiered = world.add("SZ2025-000301", SZ, "tiering", deadline_h=None)
    tiered.experts, tiered.score, tiered.tier = ["expert-01", "expert-02", "expert-03"], "86.40", 1
    second = world.add("SZ2025-000302", SZ, "tiering", deadline_h=None)
    second.experts, second.score, second.tier = ["expert-01", "expert-02", "expert-04"], "77.10", 2
    # a receipt recorded today at window LG-W03
    received = world.add("LG2025-000801", LG, "awaiting_paper", age_h=50, deadline_h=20)
    world.move(received, "award_calculation", "staff:lg-clerk-w03")
    return world


MATERIALS = [
    {"kind": "application_form", "name": "申报书", "file_id": "f-1", "filename": "申报书.pdf", "pages": 3, "sha256": "9f2c" * 16},
    {"kind": "business_license", "name": "营业执照", "file_id": "f-2", "filename": "营业执照.pdf", "pages": 3, "sha256": "1ab3" * 16},
    {"kind": "model_service_contract", "name": "模型服务合同", "file_id": "f-3", "filename": "模型服务合同-2025-018.pdf", "pages": 3, "sha256": "77de" * 16},
]


# The expert registry of the stand-in: (id, name, organisation, fields, the conflict the platform finds)
REGISTRY = [
    ("expert-01", "刘洋", "深圳大学", ["人工智能"], None),
    ("expert-02", "陈晨", "深圳市示例研究院", ["政务信息化"], None),
    ("expert-03", "杨帆", "北京示例会计师事务所", ["财务"], None),
    ("expert-04", "黄磊", "深圳市评审示例科技有限公司", ["数据治理"], "专家 expert-04 与申报单位为同一单位（深圳市评审示例科技有限公司）"),
]
WEIGHTS = {"practicality": 40, "innovation": 30, "replicability": 30}


def application_view(world: World, app: App, principal: Principal) -> dict[str, Any]:
    checks = [
        ("registered_in_longgang", "三(一)1", True, "注册地与经营地均在龙岗区", "申报单位须在龙岗区注册并实际经营。", {"registered_district": "龙岗区", "operating_address": "龙岗区坂田街道"}),
        ("supplier_not_related", "三(二)3", True, "模型服务商与申报单位无关联关系", "模型服务合同的供应商不得为申报单位的关联方。", {"contracts": [{"contract_no": "HT-2025-018", "supplier_uscc": "91440300MA5F000001"}], "related_party_usccs": []}),
        ("materials_complete", "五(二)", app.no != "LG2025-000101", "缺少：项目负责人近三个月社保缴纳凭证" if app.no == "LG2025-000101" else "材料齐全",
         "申报材料须按指南清单提交齐全。", {"required": ["application_form", "business_license", "project_lead_social_insurance_3m"], "uploaded": ["application_form", "business_license"]}),
        ("no_duplicate_application", "三(一)4", True, "申报单位未声明同一事项获其他区级资金，本项目下无同一单位的其他申报", "同一事项不得重复申报或多头申报区级专项资金（指南三(一)4）。", {"other_district_funds_for_same_item": False, "other_applications": ["LG2025-000102"]}),
    ] if app.program == LG else []
    now = world.now
    return {
        "application_no": app.no, "program": app.program, "status": app.status, "status_since": iso(app.since), "version": app.version,
        "deadline": iso(app.deadline), "deadline_weekday": None,
        "versions": [{"version": v, "submitted_at": iso(app.since - timedelta(hours=3 - v)), "materials": MATERIALS} for v in range(1, app.version + 1)],
        "pre_checks": [{"version": app.version, "rule": r, "clause": c, "passed": p, "detail": d, "explanation": e, "evidence": ev,
                        "ruleset_version": "lg-2025.3", "checked_at": iso(app.since)} for r, c, p, d, e, ev in checks],
        "duplicate_flags": {**({} if not checks else {"flagged": False, "detail": "申报单位未声明同一事项获其他区级资金，本项目下无同一单位的其他申报", "other_district_funds_for_same_item": False,
                                                        "other_applications": ["LG2025-000102"]}),
                            "flags": app.flags, "unacknowledged": sum(1 for f in app.flags if not f["acknowledged"])},
        "history": sorted(app.history, key=lambda h: h["at"]),
        "tasks": [t.item(now) for t in world.tasks if t.application_no == app.no],
        "experts": [] if principal.roles == {R.EXPERT} else [
            {"expert": e, "assigned_by": "staff:sz-admin-01", "assigned_at": iso(app.since),
             "declined_at": iso(app.since + timedelta(hours=1)) if e in app.declined else None, "decline_reason": app.declined.get(e)}
            for e in app.experts],
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
                    (t.role != "expert" or (principal.subject in world.apps[t.application_no].experts
                                            and principal.subject not in world.apps[t.application_no].declined
                                            and principal.subject not in world.apps[t.application_no].scores))]
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

    def breakdown_of(app: App) -> dict[str, Any]:
        """awards/longgang.py's AwardBreakdown, as GET /api/applications/{no}/award answers it."""
        contracts = [
            {"contract_no": "HT-2025-018", "supplier_name": "深圳市示例大模型科技有限公司", "supplier_uscc": "91440300MA5F000001", "included": True,
             "contract_amount_fen": 120_000_000, "invoiced_fen": 110_000_000, "paid_fen": 100_000_000, "eligible_fen": 100_000_000,
             "reasons": [{"clause": "二(三)", "text": "合同、发票、付款三者取最小值：付款 1,000,000.00 元"}]},
            {"contract_no": "HT-2024-007", "supplier_name": "北京示例智能科技有限公司", "supplier_uscc": "91110108MA01ABCDEN", "included": False,
             "contract_amount_fen": 50_000_000, "invoiced_fen": 50_000_000, "paid_fen": 50_000_000, "eligible_fen": 0,
             "reasons": [{"clause": "二(二)", "text": "合同完成于 2024年3月1日，不在核算周期内"}]},
            {"contract_no": "HT-2025-021", "supplier_name": "深圳市关联示例有限公司", "supplier_uscc": "91440300MA5F000002", "included": True,
             "contract_amount_fen": 80_000_000, "invoiced_fen": 80_000_000, "paid_fen": 80_000_000, "eligible_fen": 80_000_000,
             "reasons": [{"clause": "二(一)", "text": "供应商模型已完成生成式人工智能服务备案"}]},
        ]
        return {"program": app.program, "application_no": app.no, "applicant_uscc": "91440307MA5H000003", "cycle_first_day": "2024-07-01",
                "cycle_last_day": "2025-06-30", "contracts": contracts, "eligible_total_fen": 180_000_000, "rate_percent": 30,
                "rounding": "floor", "rounding_unit_fen": 1, "computed_fen": 54_000_000, "cap_year": 2025,
                "enterprise_yearly_cap_fen": 200_000_000, "already_awarded_fen": 0, "remaining_cap_fen": 200_000_000,
                "award_fen": 54_000_000, "capped": False,
                "summary": [{"clause": "二(三)", "text": "认定金额合计 1,800,000.00 元的 30%（向下取整到分）"}]}

    @api.get("/applications/{no}/award")
    async def award(no: str, principal: Authenticated) -> dict[str, Any]:
        app = world.visible(principal, no)
        if not principal.any_of((R.PROGRAM_ADMIN, R.AUDITOR)):
            raise Refusal(403, "forbidden", "只有项目管理员和审计人员可以查看资助金额核定明细")
        if app.program != LG or (app.status != "award_calculation" and app.award_fen is None):
            raise Refusal(404, "award_not_computed", "该申报尚未进入资助金额核定环节")
        b = breakdown_of(app)
        return {"application_no": no, "version": app.version, "program": app.program, "status": "confirmed" if app.status != "award_calculation" else "computed",
                "computed_fen": b["computed_fen"], "award_fen": b["award_fen"], "confirmed_fen": None if app.status == "award_calculation" else app.award_fen,
                "adjustment_reason": app.award_reason,
                "decided_by": None if app.status == "award_calculation" else "staff:lg-admin-01", "decided_at": None if app.status == "award_calculation" else iso(world.now), "computed_at": iso(app.since), "breakdown": b}

    @api.post("/applications/{no}/award/confirm")
    async def confirm_award(no: str, principal: Authenticated, body: dict[str, Any] = Body(default_factory=dict),
                            key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        def effect(app: App) -> dict[str, Any]:
            computed = breakdown_of(app)["award_fen"]
            amount = body.get("adjusted_award_fen")
            if amount is not None:
                if not str(body.get("reason") or "").strip():
                    raise Refusal(422, "invalid_input", "调整资助金额须填写理由")
                if int(amount) > computed:
                    raise Refusal(422, "invalid_input", "调整后的金额不得高于平台核定金额")
                app.award_reason = str(body["reason"]).strip()
            app.award_fen = computed if amount is None else int(amount)
            world.move(app, "awaiting_publication", principal.actor_id)
            return {"status": app.status, "deadline": None, "award_status": "adjusted" if amount is not None else "confirmed",
                    "award_fen": app.award_fen, "computed_fen": computed}

        return take(principal, no, key_of(key), "record_award", R.PROGRAM_ADMIN, {"award_calculation"}, body, effect)

    @api.post("/applications/{no}/duplicate-flags/{flag_id}/acknowledge")
    async def acknowledge(no: str, flag_id: int, principal: Authenticated, body: dict[str, Any] = Body(default_factory=dict),
                          key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        if key_of(key) in world.answers:
            return world.answers[key]
        app = world.visible(principal, no)
        if not principal.any_of((R.LG_ONLINE_REVIEWER, R.LG_BACK_OFFICE_REVIEWER, R.SZ_PRE_REVIEWER)):
            raise Refusal(403, "forbidden", "您的角色无权执行此操作")
        flag = next((f for f in app.flags if f["flag_id"] == flag_id), None)
        if flag is None:
            raise Refusal(404, "flag_not_found", "未找到该重复申报提示")
        if flag["acknowledged"]:
            raise Refusal(409, "wrong_state", "该提示已确认")
        flag.update(acknowledged=True, acknowledged_by=principal.actor_id, acknowledged_at=iso(world.now), note=body.get("note"))
        world.record(principal, "acknowledge_duplicate", app, body, "accepted")
        world.answers[key] = answer = {"application_no": no, "flag_id": flag_id, "acknowledged_by": principal.actor_id}
        return answer

    # --- Shenzhen expert review (services/review/scoring/api.py) -----------------------------------

    def scoped(principal: Principal, program: str) -> None:
        if not principal.in_program(program):
            raise Refusal(404, "program_not_found", "未找到该项目")
        if not principal.any_of((R.PROGRAM_ADMIN, R.AUDITOR)):
            raise Refusal(403, "forbidden", "您的角色无权查看")

    @api.get("/programs/{program}/experts")
    async def registry(program: str, principal: Authenticated) -> dict[str, Any]:
        scoped(principal, program)
        return {"program": program, "experts": [{"expert": e, "name": n, "organisation": o, "fields": f} for e, n, o, f, _ in REGISTRY]}

    @api.post("/applications/{no}/experts")
    async def assign(no: str, principal: Authenticated, body: dict[str, Any] = Body(...), key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        def effect(app: App) -> dict[str, Any]:
            chosen = list(body.get("experts") or [])
            known = {e[0]: e for e in REGISTRY}
            if unknown := [e for e in chosen if e not in known]:
                raise Refusal(422, "expert_not_registered", f"专家 {'、'.join(unknown)} 不在专家库中，无法核查利益冲突，不能分配")
            if conflicts := [known[e][4] for e in chosen if known[e][4]]:
                raise Refusal(422, "conflict_of_interest", f"存在利益冲突，不能分配：{'；'.join(conflicts)}")
            active = [e for e in app.experts if e not in app.declined]
            new = [e for e in chosen if e not in active]
            if len(active) + len(new) < 3:
                raise Refusal(422, "too_few_experts", f"评审专家组至少 3 人，本次分配后为 {len(active) + len(new)} 人")
            app.experts += new
            return {"application_no": app.no, "assigned": new, "panel": sorted(active + new), "min_experts": 3}

        return take(principal, no, key_of(key), "assign_expert", R.PROGRAM_ADMIN, {"expert_scoring"}, body, effect)

    @api.post("/applications/{no}/expert-assignment/decline")
    async def decline(no: str, principal: Authenticated, body: dict[str, Any] = Body(...), key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        def effect(app: App) -> dict[str, Any]:
            if principal.subject in app.scores:
                raise Refusal(409, "already_scored", "您已提交评分，不能再声明回避")
            app.declined[principal.subject] = str(body.get("reason") or "").strip()
            return {"application_no": app.no, "expert": principal.subject, "declined": True}

        return take(principal, no, key_of(key), "decline_assignment", R.EXPERT, {"expert_scoring"}, body, effect)

    @api.post("/applications/{no}/scores")
    async def score(no: str, principal: Authenticated, body: dict[str, Any] = Body(...), key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        def effect(app: App) -> dict[str, Any]:
            if principal.subject in app.scores:
                raise Refusal(409, "already_scored", "您已提交过评分，不能修改")
            criteria = body.get("criteria") or {}
            if set(criteria) != set(WEIGHTS) or any(not str(c.get("justification", "")).strip() for c in criteria.values()):
                raise Refusal(422, "invalid", "每项评分均须填写分数和评分理由")
            app.scores[principal.subject] = criteria
            weighted = sum(WEIGHTS[k] * int(v["points"]) for k, v in criteria.items()) / 100
            return {"application_no": app.no, "expert": principal.subject, "weighted_score": f"{weighted:.2f}", "submitted": True}

        return take(principal, no, key_of(key), "submit_score", R.EXPERT, {"expert_scoring"}, body, effect)

    @api.get("/applications/{no}/scores")
    async def scores(no: str, principal: Authenticated) -> dict[str, Any]:
        app = world.visible(principal, no)
        items = lambda who: [{"expert": e, "criteria": c, "submitted_at": iso(world.now)} for e, c in app.scores.items() if e in who]  # noqa: E731
        if not principal.any_of((R.PROGRAM_ADMIN, R.AUDITOR)):
            return {"application_no": no, "scores": items({principal.subject})}
        return {"application_no": no, "scores": items(set(app.experts)),
                "panel": [{"expert": e, "declined": e in app.declined, "decline_reason": app.declined.get(e), "scored": e in app.scores} for e in app.experts],
                "product_score": None if app.score is None else {"score": app.score, "tier": app.tier, "excluded_experts": 0, "recorded": True},
                "amount": None}

    def proposal_of(program: str) -> dict[str, Any]:
        products = [a for a in world.apps.values() if a.program == program and a.status == "tiering"]
        maxima = {1: 500_000_000, 2: 300_000_000, 3: 100_000_000}
        lines = [{"application_no": a.no, "applicant_uscc": "91440300MA5G0000X1", "score": a.score or "0.00", "tier": a.tier,
                  "tier_max_fen": maxima.get(a.tier or 0, 0), "after_applicant_cap_fen": maxima.get(a.tier or 0, 0),
                  "amount_fen": maxima.get(a.tier or 0, 0), "reasons": [{"clause": "02(一)", "text": "按档次最高额"}]} for a in products]
        return {"program": program, "rule": {"amount_rule": "tier_maximum_then_prorate",
                                             "description": "各产品先按档次最高额；同一申报单位年度累计超过上限的，按比例核减至剩余额度；本批合计超过年度预算的，全部按同一比例核减（到分，余数按最大余数分配）",
                                             "tiers": [{"tier": t, "min_score": m, "max_fen": maxima[t]} for t, m in ((1, 85), (2, 75), (3, 60))],
                                             "per_applicant_yearly_cap_fen": 1_000_000_000, "cap_year": 2025, "budget_fen": None,
                                             "clauses": {"criteria": "02(二)", "tiers": "02(一)", "applicant_cap": "02(四)"}},
                "products": lines, "already_awarded_fen": {}, "total_fen": sum(line["amount_fen"] for line in lines), "over_budget": False}

    @api.get("/programs/{program}/tiering")
    async def tiering(program: str, principal: Authenticated) -> dict[str, Any]:
        scoped(principal, program)
        return proposal_of(program)

    @api.post("/programs/{program}/tiering/confirm")
    async def confirm_tiering(program: str, principal: Authenticated, body: dict[str, Any] = Body(default_factory=dict),
                              key: str | None = Header(None, alias="Idempotency-Key")) -> dict[str, Any]:
        if key_of(key) in world.answers:
            return world.answers[key]
        scoped(principal, program)
        if not principal.has(R.PROGRAM_ADMIN):
            raise Refusal(403, "forbidden", "只有项目管理员可以确认档次")
        proposal = proposal_of(program)
        if body.get("applications") is not None and sorted(body["applications"]) != sorted(p["application_no"] for p in proposal["products"]):
            raise Refusal(409, "proposal_changed", "待确定档次的产品已有变化，请刷新档次方案后再确认")
        confirmed = []
        for line in proposal["products"]:
            app = world.apps[line["application_no"]]
            app.award_fen = line["amount_fen"]
            world.move(app, "awaiting_publication", principal.actor_id)
            confirmed.append({"application_no": app.no, "tier": line["tier"], "award_fen": line["amount_fen"], "status": app.status})
        answer = {"program": program, "confirmed": confirmed, "failed": [], "total_fen": proposal["total_fen"], "rule": "tier_maximum_then_prorate"}
        world.answers[key] = answer
        return answer

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

    @api.get("/programs/{program}/notice")
    async def notice(program: str, principal: Authenticated) -> dict[str, Any]:
        # The stand-in publishes straight to final lists (no period): no list is ever in its period here.
        if not principal.in_program(program):
            raise Refusal(404, "program_not_found", "未找到该项目")
        if not principal.any_of((R.PROGRAM_ADMIN, R.AUDITOR)):
            raise Refusal(403, "forbidden", "您的角色无权进行此操作")
        return {"program": program, "lists": []}

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



