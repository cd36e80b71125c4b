"""What officials read: dates, amounts, statuses, steps, roles and decisions in Chinese.

Pure functions (no I/O), used as Jinja2 filters by the console's templates and by its XLSX export.

- Dates and times in Asia/Shanghai with the weekday: `2026年1月7日 18:00（星期三）`.
- Amounts from integer fen: `yuan(12345)` -> `123.45` (元, two decimals, thousands separated);
  `wan_yuan(2_000_000_00)` -> `200.00` (万元, as award caps and budgets are written).
- Every `subsidy.contracts.lifecycle.Status` has its Chinese name (a unit test holds this).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from subsidy.contracts.lifecycle import Status
from subsidy.identity.claims import ROLE_NAMES_ZH, StaffRole

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
EMPTY = "—"

STATUS_NAMES_ZH: dict[Status, str] = {
    Status.SUBMITTED: "已提交",
    Status.PRE_CHECK: "自动核查",
    Status.ONLINE_REVIEW: "线上审核",
    Status.FORMAL_PRE_REVIEW: "形式预审",
    Status.RETURNED: "退回修改",
    Status.APPROVED_ONLINE: "已通过线上终审",
    Status.AWAITING_GD_SUBMISSION: "待广东政务服务网提交",
    Status.BACK_OFFICE_REVIEW: "后台审核",
    Status.AWAITING_SMS_DELIVERY: "待短信送达",
    Status.AWAITING_PAPER: "待收纸质材料",
    Status.EXPERT_SCORING: "专家评审",
    Status.TIERING: "确定档次",
    Status.AWARD_CALCULATION: "核定资助金额",
    Status.AWAITING_PUBLICATION: "待公示",
    Status.PUBLISHED: "已公示",
    Status.REJECTED: "不予通过",
    Status.WITHDRAWN: "已撤回",
    Status.ABANDONED: "逾期视作放弃",
}

# Element-like tag colours per status: what is done, what waits for a person, what ended badly.
STATUS_TONES: dict[Status, str] = {
    Status.APPROVED_ONLINE: "success", Status.PUBLISHED: "success", Status.AWAITING_PUBLICATION: "success",
    Status.RETURNED: "warning", Status.AWAITING_SMS_DELIVERY: "warning", Status.AWAITING_PAPER: "warning",
    Status.AWAITING_GD_SUBMISSION: "warning",
    Status.REJECTED: "danger", Status.ABANDONED: "danger", Status.WITHDRAWN: "info",
}

# The task read model's steps (services/review/tasks/steps.py names them the same way).
STEP_NAMES_ZH: dict[str, str] = {
    "online_review": "线上审核",
    "back_office_review": "后台审核",
    "confirm_notice_by_phone": "电话通知确认",
    "paper": "纸质材料收件",
    "formal_pre_review": "形式预审",
    "expert_scoring": "专家评审",
    "tiering": "确定档次",
    "award": "核定资助金额",
    "publication": "公示",
}

DECISION_NAMES_ZH: dict[str, str] = {
    "approve": "通过",
    "return": "退回修改",
    "reject": "不予通过",
    "request_paper": "要求预约提交纸质材料",
}

# The API's actions (services/review/api/access.py `Action`), as the audit log and history name them.
ACTION_NAMES_ZH: dict[str, str] = {
    "decide": "审核决定",
    "view_tasks": "查看待办",
    "view_application": "查看申报",
    "decide_online_review": "线上审核决定",
    "decide_back_office_review": "后台审核决定",
    "confirm_notice_by_phone": "电话通知确认",
    "decide_formal_pre_review": "形式预审决定",
    "record_paper_receipt": "登记纸质材料收件",
    "record_award": "确认资助金额",
    "view_award": "查看资助金额核定明细",
    "acknowledge_duplicate": "确认已知悉重复申报提示",
    "view_notice": "查看公示名单",
    "decide_objection": "处理公示异议",
    "file_objection": "提出公示异议（公众）",
    "record_objection": "登记公示异议",
    "record_expert_scoring": "记录专家组评审结果",
    "record_tiering": "登记档次",
    "assign_expert": "分配评审专家组",
    "decline_assignment": "声明回避",
    "submit_score": "提交专家评分",
    "view_scores": "查看专家评分",
    "confirm_tiering": "确认档次和资助金额",
    "record_panel_result": "重新记录专家组评审结果",
    "reassign_task": "转派待办",
    "publish": "发布公示",
    "read_audit": "查看审计日志",
    "apply_budget": "按预算比例核减资助金额",  # budget (issue 11)
    "withdrawn_from_notice": "企业撤回，移出公示名单",  # the enterprise's withdrawal during the notice period
}

OUTCOME_NAMES_ZH = {"accepted": "已执行", "refused": "被拒绝"}


# The SMS notices (subsidy.contracts.lifecycle.NoticeKind) and where a message is (notify's sms_messages.status).
NOTICE_NAMES_ZH: dict[str, str] = {
    "online_approved": "通过线上终审通知", "returned": "退回修改通知", "rejected": "不予通过通知",
    "back_office_approved": "后台审核通过通知", "abandoned": "逾期视作放弃通知", "resubmission_lapsed": "逾期未重新提交通知",
    "award_published": "资助公示通知", "paper_requested": "预约提交纸质材料通知", "not_funded": "未获资助通知",
    "published": "公示通知", "paper_reminder": "纸质材料提交提醒",
}
SMS_STATUS_NAMES_ZH = {"pending": "待发送", "sending": "发送中", "accepted": "已提交运营商", "delivered": "已送达",
                       "failed": "发送失败", "phone_task": "转电话通知"}

TIER_NAMES_ZH = {1: "一档", 2: "二档", 3: "三档"}


def _moment(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("a time without its zone cannot be shown to officials")
    return moment.astimezone(SHANGHAI)


def datetime_zh(value: str | datetime | None) -> str:
    """`2026年1月7日 18:00（星期三）` in Asia/Shanghai; `—` for none."""
    moment = _moment(value)
    if moment is None:
        return EMPTY
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}（{WEEKDAYS_ZH[moment.weekday()]}）"


def date_zh(value: str | date | datetime | None) -> str:
    """`2026年1月7日（星期三）`: a calendar day (a datetime is taken in Asia/Shanghai)."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        moment = _moment(value)
        assert moment is not None
        value = moment.date()
    return f"{value.year}年{value.month}月{value.day}日（{WEEKDAYS_ZH[value.weekday()]}）"


def local_date(value: str | datetime | None) -> date | None:
    moment = _moment(value)
    return moment.date() if moment is not None else None


def yuan(fen: int | None) -> str:
    """Integer fen as 元 with two decimals and thousands separators: 123456 -> `1,234.56`."""
    if fen is None:
        return EMPTY
    return f"{Decimal(int(fen)) / 100:,.2f}"


def wan_yuan(fen: int | None) -> str:
    """Integer fen as 万元 with two decimals (rounded half up): 200000000 -> `200.00`."""
    if fen is None:
        return EMPTY
    amount = (Decimal(int(fen)) / 1_000_000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{amount:,.2f}"


def fen_from_yuan(text: str) -> int:
    """What an official types in 元 (`1,234.5`) as integer fen; ValueError for anything else."""
    cleaned = text.strip().replace(",", "").replace("，", "")
    if not cleaned:
        raise ValueError("empty amount")
    try:
        amount = Decimal(cleaned)
    except ArithmeticError:
        raise ValueError("not an amount") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError("an amount in 元 has at most two decimals and is not negative")
    return int(amount * 100)


def status_zh(value: str | None) -> str:
    if not value:
        return EMPTY
    try:
        return STATUS_NAMES_ZH[Status(value)]
    except ValueError:
        return value


def status_tone(value: str | None) -> str:
    try:
        return STATUS_TONES.get(Status(value or ""), "primary")
    except ValueError:
        return "info"


def step_zh(value: str | None) -> str:
    return STEP_NAMES_ZH.get(value or "", value or EMPTY)


def role_zh(value: str | None) -> str:
    if not value:
        return EMPTY
    try:
        return ROLE_NAMES_ZH[StaffRole(value)]
    except ValueError:  # not an official: the portal, a system
        return SYSTEM_ACTORS_ZH.get(value, value)


def roles_zh(values: Any) -> str:
    return "、".join(role_zh(v) for v in values) if values else EMPTY


def decision_zh(value: str | None) -> str:
    return DECISION_NAMES_ZH.get(value or "", value or EMPTY)


def action_zh(value: str | None) -> str:
    return ACTION_NAMES_ZH.get(value or "", value or EMPTY)


def outcome_zh(value: str | None) -> str:
    return OUTCOME_NAMES_ZH.get(value or "", value or EMPTY)


def program_zh(value: str | None) -> str:
    """A program's name from its configuration (subsidy/programs/*.toml); the code if unknown."""
    from subsidy.programs import programs

    program = programs().get(value or "")
    return program.name if program is not None else (value or EMPTY)


def actor_zh(value: str | None) -> str:
    """Who acted, as ids the platform records: `staff:lg-rev-01` -> `lg-rev-01`; systems by name."""
    if not value:
        return EMPTY
    kind, _, who = value.partition(":")
    if not who:
        return SYSTEM_ACTORS_ZH.get(value, value)
    return {"staff": who, "portal": f"申报系统（{who}）", "system": "系统", "review": "系统"}.get(kind, value)


# What a pre-check read (services/review/pre_checks.py `evidence`), as officials call it.
EVIDENCE_NAMES_ZH: dict[str, str] = {
    "registered_district": "注册地所在区", "operating_address": "经营地址", "is_branch": "是否分支机构",
    "head_office_uscc": "总部统一社会信用代码", "head_office_authorisation_uploaded": "已上传总部授权证明",
    "serious_dishonesty_listed": "列入严重失信名单", "other_district_funds_for_same_item": "同一事项获其他区级资金",
    "other_applications": "关联申报", "industry_code": "行业代码", "contracts": "合同", "related_party_usccs": "关联方信用代码",
    "required": "应提交材料", "uploaded": "已提交材料", "contract_no": "合同编号", "supplier_uscc": "供应商信用代码",
    "cac_filing_no": "网信备案号", "security_assessment_level": "安全评估等级",
    # the applicant's declarations (subsidy/contracts/events.py LonggangDeclarations, ShenzhenDeclarations)
    "ethics_sensitive": "涉及科技伦理敏感领域", "other_municipal_support_for_same_product": "同一产品获市级其他资金支持",
}
# Longgang's automatic pre-checks (services/review/rules/longgang.py), by short name.
RULE_NAMES_ZH: dict[str, str] = {
    "registered_in_longgang": "注册及经营地", "branch_authorisation": "总部授权", "not_seriously_dishonest": "严重失信",
    "no_duplicate_application": "重复申报", "industry_code": "行业代码", "supplier_not_related": "模型供给方关联",
    "model_filed_or_assessed": "模型备案或等保测评", "materials_complete": "申报材料齐全",
}
SYSTEM_ACTORS_ZH = {"portal": "申报单位（申报系统）", "review": "系统（审核服务）", "intake": "系统（受理服务）", "notify": "系统（短信服务）",
                    "publication": "系统（公示）", "system": "系统"}


def evidence_key_zh(key: str) -> str:
    return EVIDENCE_NAMES_ZH.get(key, key)


def evidence_zh(value: Any) -> str:
    """A piece of evidence as a line of text: lists joined by 、, yes/no, material kinds by name,
    contracts as 合同编号 …，供应商信用代码 …"""
    from services.review.console.materials import material_zh

    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict):
        return "，".join(f"{evidence_key_zh(k)} {evidence_zh(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "；".join(evidence_zh(v) for v in value) if any(isinstance(v, dict) for v in value) else \
            "、".join(material_zh(str(v)) for v in value)
    return str(value)


# What lifecycles write as a state change's reason (workflows/lifecycle/*.py), for people. An
# official's own words (a return's reasons) pass through as written.
_REASONS_ZH: tuple[tuple[re.Pattern[str], Any], ...] = tuple((re.compile(p), f) for p, f in (
    (r"^submitted$", lambda m: "已提交申报"),
    (r"^pre_checks_passed$", lambda m: "自动核查全部通过"),
    (r"^pre_checks_failed:(.*)$", lambda m: "自动核查未通过：" + "、".join(RULE_NAMES_ZH.get(r, r) for r in m.group(1).split(","))),
    (r"^confirmed_by_phone$", lambda m: "已电话通知申报单位，开始计算纸质材料期限"),
    (r"^sms_delivered$", lambda m: "短信已送达，开始计算纸质材料期限"),
    (r"^paper_requested:(.+)$", lambda m: f"要求预约提交纸质材料：{m.group(1)}"),
    (r"^paper_requested$", lambda m: "要求预约提交纸质材料"),
    (r"^form_issued:(.+)$", lambda m: f"已生成申报书（编号 {m.group(1)}）"),
    (r"^gd_case:(.+)$", lambda m: f"已在广东政务服务网提交（受理号 {m.group(1)}）"),
    (r"^sms_receipt_missing$", lambda m: "未收到短信送达回执，须电话通知"),
    (r"^paper_received:(.+)$", lambda m: f"窗口 {m.group(1)} 已收纸质材料"),
    (r"^tier:(\w+); award_fen:(\d+)$", lambda m: f"档次 {tier_zh(int(m.group(1))) if m.group(1).isdigit() else '不予资助'}，资助 {yuan(int(m.group(2)))} 元"),
    (r"^award_fen:(\d+)$", lambda m: f"核定资助 {yuan(int(m.group(1)))} 元"),
    (r"^notice:(.+)$", lambda m: f"已公示（公示编号 {m.group(1)}）"),
    (r"^product_score:(.+)$", lambda m: f"专家评审综合得分 {m.group(1)} 分"),
    # Recorded before the product's score was carried: the unweighted sum of the criterion means,
    # not a score of the product (its 综合得分 is on the scores tab).
    (r"^expert_score:(.+)$", lambda m: f"专家评审各项平均分合计 {m.group(1)}（未加权，非综合得分）"),
    (r"^resubmitted:v(\d+)$", lambda m: f"重新提交第 {m.group(1)} 版"),
    (r"^formal_pre_review_passed$", lambda m: "形式预审通过"),
    (r"^paper_deadline_passed$", lambda m: "逾期未提交纸质材料"),
    (r"^resubmission_deadline_passed$", lambda m: "逾期未重新提交"),
    (r"^not_funded$", lambda m: "未获资助"),
    (r"^withdrawn$", lambda m: "申报单位撤回"),
    (r"^(\w+)$", lambda m: f"已发送{NOTICE_NAMES_ZH[m.group(1)]}" if m.group(1) in NOTICE_NAMES_ZH else m.group(1)),
))


def reason_zh(value: str | None) -> str:
    if not value:
        return EMPTY
    for pattern, render in _REASONS_ZH:
        if match := pattern.match(value):
            return str(render(match))
    return value


def notice_zh(value: str | None) -> str:
    return NOTICE_NAMES_ZH.get(value or "", value or EMPTY)


def sms_status_zh(value: str | None) -> str:
    return SMS_STATUS_NAMES_ZH.get(value or "", value or EMPTY)


def tier_zh(value: int | None) -> str:
    return TIER_NAMES_ZH.get(value, "不予资助") if value is not None else EMPTY


# The refusal codes the API records (services/review/decisions/refusals.py, scoring/service.py), as
# officials read them; the detail after the code (expert ids, states) follows.
REFUSAL_NAMES_ZH = {
    "conflict_of_interest": "存在利益冲突", "too_few_experts": "评审专家人数不足", "expert_not_registered": "专家不在专家库中",
    "expert_declined": "专家已声明回避", "facts_missing": "申报材料尚未到达", "wrong_state": "当前环节不能办理",
    "forbidden": "无权限", "not_assigned": "未分配给本人", "already_scored": "已提交过评分", "invalid_input": "填写内容有误",
    "proposal_changed": "档次方案已变化", "empty": "暂无可确认的产品", "not_found": "未找到",
}


def refusal_zh(value: str | None) -> str:
    """`conflict_of_interest: conflict_of_interest: expert-04` -> `存在利益冲突：expert-04`."""
    if not value:
        return EMPTY
    code, _, rest = value.partition(":")
    name = REFUSAL_NAMES_ZH.get(code.strip())
    if name is None:
        return value
    detail = rest.strip()
    while detail.partition(":")[0].strip() == code.strip():
        detail = detail.partition(":")[2].strip()
    return f"{name}：{detail}" if detail else name


OBJECTION_STATUS_ZH = {"open": "待处理", "upheld": "异议成立", "dismissed": "异议不成立", "withdrawn": "申报已撤回"}
TRIGGER_KINDS_ZH = {"sms_delivered": "短信送达", "confirmed_by_phone": "电话通知确认", "return_notice": "退回修改通知"}
ROUNDING_ZH = {"floor": "向下取整", "half_up": "四舍五入"}


def objection_status_zh(value: str | None) -> str:
    return OBJECTION_STATUS_ZH.get(value or "", value or EMPTY)


def trigger_kind_zh(value: str | None) -> str:
    return TRIGGER_KINDS_ZH.get(value or "", value or EMPTY)


def rounding_zh(award: Any) -> str:
    """A batch's `[award]` rounding as officials read it: `按比例计算后向下取整到分` (from the
    program's configuration, subsidy/programs/*.toml, never a fixed word)."""
    rule = getattr(getattr(award, "rounding", None), "value", None) or str(getattr(award, "rounding", "") or "")
    unit_fen = int(getattr(award, "rounding_unit_fen", 1) or 1)
    unit = "分" if unit_fen == 1 else ("元" if unit_fen == 100 else f"{yuan(unit_fen)} 元")
    name = ROUNDING_ZH.get(rule)
    return f"按比例计算后{name}到{unit}" if name else EMPTY


def budget_change_zh(from_fen: int | None, to_fen: int | None) -> str:
    """An amount the batch budget changed (按比例核减), from integer fen:
    `60,000.01 元 → 42,000.00 元（核减 18,000.01 元）`; back up to the confirmed amount it reads 恢复."""
    if from_fen is None or to_fen is None:
        return EMPTY
    if to_fen == from_fen:
        return f"{yuan(to_fen)} 元（未变）"
    change = "核减" if to_fen < from_fen else "恢复"
    return f"{yuan(from_fen)} 元 → {yuan(to_fen)} 元（{change} {yuan(abs(from_fen - to_fen))} 元）"


def share_zh(part_fen: int | None, whole_fen: int | None) -> str:
    """`part` as a percentage of `whole`, two decimals, rounded half up: (7000000, 10000001) -> `70.00%`."""
    if part_fen is None or not whole_fen:
        return EMPTY
    percent = (Decimal(int(part_fen)) * 100 / Decimal(int(whole_fen))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{percent}%"


FILTERS = {
    "datetime_zh": datetime_zh, "date_zh": date_zh, "yuan": yuan, "wan_yuan": wan_yuan,
    "status_zh": status_zh, "status_tone": status_tone, "step_zh": step_zh, "role_zh": role_zh,
    "roles_zh": roles_zh, "decision_zh": decision_zh, "action_zh": action_zh, "outcome_zh": outcome_zh,
    "program_zh": program_zh, "actor_zh": actor_zh, "tier_zh": tier_zh,
    "evidence_key_zh": evidence_key_zh, "evidence_zh": evidence_zh, "notice_zh": notice_zh,
    "sms_status_zh": sms_status_zh, "reason_zh": reason_zh, "refusal_zh": refusal_zh,
    "objection_status_zh": objection_status_zh, "trigger_kind_zh": trigger_kind_zh, "rounding_zh": rounding_zh,
    "budget_change_zh": budget_change_zh, "share_zh": share_zh,
}
