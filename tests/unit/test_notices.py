"""SMS notices (services/notify/notices.py): which change gets which notice, its text from the
program's template, idempotency keys, template validation and quiet hours. No servers.

The notice is the workflow's decision, carried in the state change's typed fields (`notice_kind`,
`reasons`, `award_fen`, `tier`, `notice_id`); `reason` is for people and changes nothing here.
Events recorded before those fields (`contract_revision` 1) go through the legacy mapping of their
reason, tested at the end of the notices."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.notify.notices import (
    KINDS_BY_LIFECYCLE,
    TEMPLATES_DIR,
    VARIABLES,
    ApplicationFacts,
    MissingFact,
    Notice,
    QuietHours,
    TemplateConfigError,
    Templates,
    UnexpectedTransition,
    format_deadline,
    format_yuan,
    load_templates,
    notice_for_reminder,
    notice_for_state_change,
    notice_kind_for_state_change,
)
from subsidy.contracts.lifecycle import STATE_CHANGE_REVISION, NoticeKind, ReminderDue
from subsidy.contracts.platform_events import ApplicationStateChanged, parse_state_changed
from subsidy.programs import load_programs

SH = ZoneInfo("Asia/Shanghai")
LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"
LG_NO, SZ_NO = "LG2025-0001", "SZ2025-0001"
NAME = "深圳市龙岗智算科技有限公司"
FACTS = ApplicationFacts(applicant_name=NAME)
DEADLINE = datetime(2026, 1, 7, 18, 0, tzinfo=SH)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates()


def change(
    program: str,
    to_state: str,
    kind: NoticeKind | None,
    *,
    reason: str = "a phrase for people, never parsed",
    reasons: tuple[str, ...] = (),
    award_fen: int | None = None,
    tier: int | None = None,
    notice_id: str | None = None,
    from_state: str | None = None,
    version: int = 1,
    deadline: datetime | None = None,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> ApplicationStateChanged:
    """A state change as today's workflows record it: the notice and its facts in typed fields."""
    return ApplicationStateChanged(
        event_id=event_id or str(uuid.uuid4()),
        program=program,
        application_no=LG_NO if program == LG else SZ_NO,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        actor="staff:lg-rev-01",
        deadline=deadline,
        occurred_at=occurred_at or datetime(2025, 12, 30, 10, 0, tzinfo=SH),
        correlation_id="corr-1",
        version=version,
        contract_revision=STATE_CHANGE_REVISION,
        notice_kind=kind.value if kind is not None else None,
        reasons=reasons,
        award_fen=award_fen,
        tier=tier,
        notice_id=notice_id,
    )


def legacy_change(
    program: str,
    to_state: str,
    reason: str | None,
    *,
    from_state: str | None = None,
    version: int = 1,
    deadline: datetime | None = None,
) -> ApplicationStateChanged:
    """A state change recorded before the typed fields, as it still sits in the topic: parsed from
    the JSON an older intake wrote (no contract_revision, no notice_kind, ...)."""
    raw = {
        "event_id": str(uuid.uuid4()), "program": program, "application_no": LG_NO if program == LG else SZ_NO,
        "from_state": from_state, "to_state": to_state, "reason": reason, "actor": "staff:LG-0042",
        "deadline": deadline.isoformat() if deadline else None, "occurred_at": "2025-12-30T10:00:00+08:00",
        "correlation_id": "corr-1", "version": version,
    }  # fmt: skip
    event = parse_state_changed(json.dumps(raw).encode())
    assert event.contract_revision == 1 and event.notice_kind is None
    return event


def reminder(due_at: datetime, working_days_left: int, deadline: datetime = DEADLINE) -> ReminderDue:
    return ReminderDue(
        event_id=str(uuid.uuid4()),
        program=LG,
        application_no=LG_NO,
        deadline=deadline,
        due_at=due_at,
        working_days_left=working_days_left,
        correlation_id="corr-1",
    )


def assert_rendered(notice: Notice, templates: Templates) -> None:
    """What every notice shares: filled, addressed, signed, coded, Tencent's values in order."""
    assert "{" not in notice.text and "}" not in notice.text
    assert notice.text.startswith(NAME + "：")
    assert notice.application_no in notice.text
    program = templates.program(notice.program)
    template = program.notice(notice.kind)
    assert notice.sign_name == program.sign_name
    assert notice.aliyun_template_code == template.aliyun_template_code
    assert notice.tencent_template_id == template.tencent_template_id
    assert set(notice.params) == set(template.placeholders)
    assert notice.tencent_params == [notice.params[name] for name in template.tencent_params]
    assert list(notice.params_for("tencent")) == list(template.tencent_params)
    assert notice.quiet_hours_exempt is template.quiet_hours_exempt
    assert notice.idempotency_key.startswith(f"{notice.application_no}:{notice.kind}:")


# --- formats --------------------------------------------------------------------------------


def test_format_deadline_in_shanghai_without_zero_padding() -> None:
    assert format_deadline(DEADLINE) == "2026年1月7日18:00"
    assert format_deadline(datetime(2026, 1, 7, 10, 0, tzinfo=UTC)) == "2026年1月7日18:00"
    assert format_deadline(datetime(2025, 12, 8, 9, 5, tzinfo=SH)) == "2025年12月8日09:05"
    with pytest.raises(ValueError):
        format_deadline(datetime(2026, 1, 7, 18, 0))


@pytest.mark.parametrize(
    ("fen", "text"),
    [(45_000_000, "450,000.00元"), (1, "0.01元"), (0, "0.00元"), (200_000_000, "2,000,000.00元"), (3_701_235, "37,012.35元")],
)
def test_format_yuan_exact_to_the_fen(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


def test_format_yuan_takes_integer_fen_only() -> None:
    with pytest.raises(TypeError):
        format_yuan(450000.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        format_yuan(-1)


# --- the shipped templates ------------------------------------------------------------------


def test_shipped_templates_cover_each_lifecycle(templates: Templates) -> None:
    assert set(templates.programs) == {LG, SZ}
    assert set(templates.program(LG).notices) == KINDS_BY_LIFECYCLE["LonggangModelCallLifecycle"]
    assert set(templates.program(SZ).notices) == KINDS_BY_LIFECYCLE["ShenzhenGovAiScenarioLifecycle"]
    assert templates.program(LG).sign_name == "龙岗区人工智能署"
    assert templates.program(SZ).sign_name == "深圳市政务服务数据管理局"
    exempt = {(code, kind) for code, p in templates.programs.items() for kind, t in p.notices.items() if t.quiet_hours_exempt}
    assert exempt == {(LG, "back_office_approved"), (LG, "returned"), (SZ, "returned")}


def test_the_workflows_notice_kinds_are_the_templates_kinds() -> None:
    from workflows.lifecycle.longgang import APPROVAL_NOTICE

    assert APPROVAL_NOTICE == "back_office_approved"  # the lifecycle awaits receipts of this kind
    assert {kind.value for kind in NoticeKind} == set(VARIABLES)
    assert set().union(*KINDS_BY_LIFECYCLE.values()) == set(VARIABLES)


# --- Longgang notices -----------------------------------------------------------------------


def test_lg_online_approved(templates: Templates) -> None:
    event = change(LG, "approved_online", NoticeKind.ONLINE_APPROVED, from_state="online_review")
    notice = notice_for_state_change(event, FACTS, templates)
    assert notice is not None and notice.kind == "online_approved"
    assert_rendered(notice, templates)
    assert "已通过线上终审" in notice.text and "下载带水印的申报书" in notice.text and "广东政务服务网" in notice.text
    assert notice.idempotency_key == f"{LG_NO}:online_approved:v1"


def test_lg_returned_with_reasons_and_date(templates: Templates) -> None:
    event = change(LG, "returned", NoticeKind.RETURNED, reasons=("缺少模型使用报告", "合同金额与发票不符"),
                   from_state="online_review", deadline=DEADLINE)  # fmt: skip
    notice = notice_for_state_change(event, FACTS, templates)
    assert notice is not None and notice.kind == "returned"
    assert_rendered(notice, templates)
    assert "缺少模型使用报告；合同金额与发票不符" in notice.text
    assert "请于2026年1月7日18:00前" in notice.text and "逾期视为放弃申请" in notice.text
    assert notice.params["deadline"] == "2026年1月7日18:00"
    assert notice.quiet_hours_exempt


@pytest.mark.parametrize("from_state", ["online_review", "back_office_review"])
def test_lg_rejected_with_reasons(templates: Templates, from_state: str) -> None:
    event = change(LG, "rejected", NoticeKind.REJECTED, reasons=("行业代码不符合要求",), from_state=from_state)
    notice = notice_for_state_change(event, FACTS, templates)
    assert notice is not None and notice.kind == "rejected"
    assert_rendered(notice, templates)
    assert "未予通过" in notice.text and "原因：行业代码不符合要求" in notice.text


def test_lg_back_office_approved_paper_windows_and_deadline_rule(templates: Templates) -> None:
    event = change(LG, "awaiting_sms_delivery", NoticeKind.BACK_OFFICE_APPROVED, from_state="back_office_review", version=2)
    notice = notice_for_state_change(event, FACTS, templates)
    assert notice is not None and notice.kind == "back_office_approved"
    assert_rendered(notice, templates)
    for phrase in ("广东政务服务网", "已审核通过", "收到本短信后5个工作日内", "带水印的申报书", "胶装成册", "骑缝章",
                   "一式两份", "目录索引", "共13个", "申报指南五（三）", "逾期视为放弃申请"):  # fmt: skip
        assert phrase in notice.text, phrase
    assert len(f"【{notice.sign_name}】{notice.text}") <= 210  # one readable SMS, not the 13 addresses
    assert notice.quiet_hours_exempt
    assert notice.idempotency_key == f"{LG_NO}:back_office_approved:v2"


def test_lg_paper_reminder(templates: Templates) -> None:
    notice = notice_for_reminder(reminder(datetime(2026, 1, 5, 9, 0, tzinfo=SH), 3), FACTS, templates)
    assert notice.kind == "paper_reminder"
    assert_rendered(notice, templates)
    assert "截止时间为2026年1月7日18:00" in notice.text and "还剩3个工作日" in notice.text
    assert notice.expires_at == DEADLINE and not notice.quiet_hours_exempt
    assert notice.idempotency_key == f"{LG_NO}:paper_reminder:20260105T090000"


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [
        (NoticeKind.ABANDONED, "未在规定期限内递交纸质材料，视为放弃申请"),
        (NoticeKind.RESUBMISSION_LAPSED, "未在退回修改通知规定的期限内重新提交，视为放弃申请"),
    ],
)
def test_lg_abandonment(templates: Templates, kind: NoticeKind, phrase: str) -> None:
    notice = notice_for_state_change(change(LG, "abandoned", kind), FACTS, templates)
    assert notice is not None and notice.kind == kind
    assert_rendered(notice, templates)
    assert phrase in notice.text


def test_lg_award_published_with_the_amount_the_change_carries(templates: Templates) -> None:
    awarded = change(LG, "awaiting_publication", None, award_fen=45_000_000, from_state="award_calculation")
    assert notice_for_state_change(awarded, FACTS, templates) is None  # only proposed until published
    assert FACTS.after(awarded).award_fen == 45_000_000  # remembered by notify
    published = change(LG, "published", NoticeKind.AWARD_PUBLISHED, award_fen=45_000_000, notice_id="LG-2025-GS-01",
                       from_state="awaiting_publication")  # fmt: skip
    notice = notice_for_state_change(published, FACTS, templates)
    assert notice is not None and notice.kind == "award_published"
    assert_rendered(notice, templates)
    assert "拟资助金额450,000.00元" in notice.text and "公示" in notice.text
    assert notice.idempotency_key == f"{LG_NO}:award_published:LG-2025-GS-01"


def test_the_amount_the_change_carries_wins_over_a_remembered_one(templates: Templates) -> None:
    published = change(LG, "published", NoticeKind.AWARD_PUBLISHED, award_fen=45_000_000, notice_id="N1")
    notice = notice_for_state_change(published, ApplicationFacts(applicant_name=NAME, award_fen=1), templates)
    assert notice is not None and notice.params["award_yuan"] == "450,000.00元"
    remembered = notice_for_state_change(
        change(LG, "published", NoticeKind.AWARD_PUBLISHED, notice_id="N1"), ApplicationFacts(applicant_name=NAME, award_fen=1), templates)
    assert remembered is not None and remembered.params["award_yuan"] == "0.01元"


def test_published_without_a_known_award_is_an_error(templates: Templates) -> None:
    with pytest.raises(MissingFact, match="award_yuan"):
        notice_for_state_change(change(LG, "published", NoticeKind.AWARD_PUBLISHED, notice_id="N1"), FACTS, templates)


# --- Shenzhen notices -----------------------------------------------------------------------


def test_sz_returned(templates: Templates) -> None:
    event = change(SZ, "returned", NoticeKind.RETURNED, reasons=("用户使用报告未盖章",), from_state="formal_pre_review", deadline=DEADLINE)
    notice = notice_for_state_change(event, FACTS, templates)
    assert notice is not None and notice.kind == "returned"
    assert_rendered(notice, templates)
    assert "形式预审需退回修改" in notice.text and "用户使用报告未盖章" in notice.text
    assert "请于2026年1月7日18:00前" in notice.text and "深圳市财政专项资金统一管理平台" in notice.text


def test_sz_rejected(templates: Templates) -> None:
    notice = notice_for_state_change(change(SZ, "rejected", NoticeKind.REJECTED, reasons=("产品未在实际场景中投入使用",)), FACTS, templates)
    assert notice is not None and notice.kind == "rejected"
    assert_rendered(notice, templates)
    assert "原因：产品未在实际场景中投入使用" in notice.text


def test_sz_not_funded(templates: Templates) -> None:
    notice = notice_for_state_change(change(SZ, "rejected", NoticeKind.NOT_FUNDED, reason="not_funded", from_state="tiering"), FACTS, templates)
    assert notice is not None and notice.kind == "not_funded"
    assert_rendered(notice, templates)
    assert "未列入本年度资助范围" in notice.text and "not_funded" not in notice.text


@pytest.mark.parametrize(
    ("reasons", "requirement"),
    [(("合同原件核验", "发票原件核验"), "具体要求：合同原件核验；发票原件核验"), ((), "具体要求：详见平台形式预审意见")],
)
def test_sz_paper_requested(templates: Templates, reasons: tuple[str, ...], requirement: str) -> None:
    event = change(SZ, "awaiting_paper", NoticeKind.PAPER_REQUESTED, reasons=reasons, from_state="formal_pre_review")
    notice = notice_for_state_change(event, FACTS, templates)
    assert notice is not None and notice.kind == "paper_requested"
    assert_rendered(notice, templates)
    assert requirement in notice.text
    assert "“i深圳”APP预约" in notice.text and "市民中心B区西厅" in notice.text


def test_sz_resubmission_lapsed(templates: Templates) -> None:
    notice = notice_for_state_change(change(SZ, "abandoned", NoticeKind.RESUBMISSION_LAPSED), FACTS, templates)
    assert notice is not None and notice.kind == "resubmission_lapsed"
    assert_rendered(notice, templates)


def test_sz_published_with_tier_and_amount(templates: Templates) -> None:
    tiered = change(SZ, "awaiting_publication", None, tier=1, award_fen=450_000_000, from_state="tiering")
    assert notice_for_state_change(tiered, FACTS, templates) is None
    published = change(SZ, "published", NoticeKind.PUBLISHED, tier=1, award_fen=450_000_000, notice_id="SZ-2025-01")
    notice = notice_for_state_change(published, FACTS, templates)
    assert notice is not None and notice.kind == "published"
    assert_rendered(notice, templates)
    assert "拟予一档支持" in notice.text and "拟资助金额4,500,000.00元" in notice.text
    assert notice.idempotency_key == f"{SZ_NO}:published:SZ-2025-01"


# --- the reason is for people: rewording it changes no SMS -----------------------------------


@pytest.mark.parametrize(
    ("program", "to_state", "kind", "original"),
    [
        (LG, "awaiting_sms_delivery", NoticeKind.BACK_OFFICE_APPROVED, "back_office_approved"),
        (LG, "abandoned", NoticeKind.ABANDONED, "paper_deadline_passed"),
        (LG, "abandoned", NoticeKind.RESUBMISSION_LAPSED, "resubmission_deadline_passed"),
        (SZ, "rejected", NoticeKind.NOT_FUNDED, "not_funded"),
        (SZ, "awaiting_paper", NoticeKind.PAPER_REQUESTED, "paper_requested:合同原件核验"),
        (SZ, "published", NoticeKind.PUBLISHED, "notice:SZ-2025-01"),
    ],
)
def test_rewording_a_reason_changes_no_sms(templates: Templates, program: str, to_state: str, kind: NoticeKind, original: str) -> None:
    facts = dict(reasons=("合同原件核验",), tier=1, award_fen=450_000_000, notice_id="SZ-2025-01", deadline=DEADLINE)
    notices = [
        notice_for_state_change(change(program, to_state, kind, reason=reason, **facts), FACTS, templates)  # type: ignore[arg-type]
        for reason in (original, "后台审核通过，已发短信", "", "award_fen:1; tier:3; notice:OTHER")
    ]
    assert all(n is not None and n.kind == kind for n in notices)
    assert len({(n.text, n.idempotency_key) for n in notices if n is not None}) == 1
    # ... and a change whose reason reads like a notice's, but which names none, sends nothing.
    assert notice_for_state_change(change(program, to_state, None, reason=original, **facts), FACTS, templates) is None  # type: ignore[arg-type]


def test_a_kind_the_lifecycle_never_sends_is_an_error(templates: Templates) -> None:
    with pytest.raises(UnexpectedTransition):
        notice_for_state_change(change(SZ, "abandoned", NoticeKind.ABANDONED), FACTS, templates)  # SZ paper has no deadline
    with pytest.raises(UnexpectedTransition):
        notice_kind_for_state_change(change(LG, "rejected", NoticeKind.NOT_FUNDED), templates)
    with pytest.raises(UnexpectedTransition):  # reminders come from the reminder-due event only
        notice_kind_for_state_change(change(LG, "awaiting_paper", NoticeKind.PAPER_REMINDER), templates)


def test_reminders_only_where_the_lifecycle_has_them(templates: Templates) -> None:
    sz_reminder = reminder(datetime(2026, 1, 5, 9, 0, tzinfo=SH), 3).model_copy(update={"program": SZ})
    with pytest.raises(ValueError, match="paper_reminder"):
        notice_for_reminder(sz_reminder, FACTS, templates)


def test_long_reasons_are_cut_to_the_variable_limit(templates: Templates) -> None:
    reasons = tuple(f"第{i}项材料不符合要求，请按申报指南四（二）补充完整" for i in range(1, 10))
    notice = notice_for_state_change(change(LG, "rejected", NoticeKind.REJECTED, reasons=reasons), FACTS, templates)
    assert notice is not None
    assert len(notice.params["reasons"]) == templates.program(LG).limit("reasons") == 120
    assert notice.params["reasons"].endswith("…") and "; " not in notice.params["reasons"]


# --- idempotency keys -----------------------------------------------------------------------


def test_idempotency_keys(templates: Templates) -> None:
    def key(event: ApplicationStateChanged) -> str:
        notice = notice_for_state_change(event, FACTS, templates)
        assert notice is not None
        return notice.idempotency_key

    def returned(version: int, deadline: datetime) -> ApplicationStateChanged:
        return change(LG, "returned", NoticeKind.RETURNED, reasons=("缺材料",), version=version, deadline=deadline)

    round_1 = returned(1, DEADLINE)
    round_2 = returned(2, datetime(2026, 1, 20, 18, 0, tzinfo=SH))
    same_date_next_round = returned(2, DEADLINE)
    assert key(round_1) == f"{LG_NO}:returned:v1:20260107T180000"
    assert len({key(round_1), key(round_2), key(same_date_next_round)}) == 3
    # The same event redelivered, or recorded again under a new event id (a reset workflow): one SMS.
    assert key(round_1) == key(round_1) == key(round_1.model_copy(update={"event_id": str(uuid.uuid4())}))

    approval_v1 = change(LG, "awaiting_sms_delivery", NoticeKind.BACK_OFFICE_APPROVED, version=1)
    approval_v2 = change(LG, "awaiting_sms_delivery", NoticeKind.BACK_OFFICE_APPROVED, version=2)
    assert key(approval_v1) != key(approval_v2)
    assert key(approval_v1) == key(approval_v1.model_copy(update={"event_id": str(uuid.uuid4())}))

    first = change(SZ, "awaiting_paper", NoticeKind.PAPER_REQUESTED, occurred_at=datetime(2025, 11, 10, 10, 0, tzinfo=SH))
    again = change(SZ, "awaiting_paper", NoticeKind.PAPER_REQUESTED, occurred_at=datetime(2025, 11, 20, 10, 0, tzinfo=SH))
    assert key(first) != key(again)

    two_days_before = notice_for_reminder(reminder(datetime(2026, 1, 5, 9, 0, tzinfo=SH), 3), FACTS, templates)
    last_day = notice_for_reminder(reminder(datetime(2026, 1, 7, 9, 0, tzinfo=SH), 1), FACTS, templates)
    assert two_days_before.idempotency_key != last_day.idempotency_key
    assert two_days_before.idempotency_key == notice_for_reminder(reminder(datetime(2026, 1, 5, 9, 0, tzinfo=SH), 3), FACTS, templates).idempotency_key


# --- legacy: events recorded before the typed fields (contract_revision 1) -------------------


@pytest.mark.parametrize(
    ("program", "to_state", "reason", "kind"),
    [
        (LG, "approved_online", "已通过线上终审", "online_approved"),
        (LG, "rejected", "行业代码不符合要求", "rejected"),
        (LG, "awaiting_sms_delivery", "back_office_approved", "back_office_approved"),
        (LG, "abandoned", "paper_deadline_passed", "abandoned"),
        (LG, "abandoned", "resubmission_deadline_passed", "resubmission_lapsed"),
        (SZ, "rejected", "not_funded", "not_funded"),
        (SZ, "rejected", "产品未在实际场景中投入使用", "rejected"),
        (SZ, "awaiting_paper", "paper_requested:合同原件核验; 发票原件核验", "paper_requested"),
        (SZ, "abandoned", "resubmission_deadline_passed", "resubmission_lapsed"),
    ],
)
def test_legacy_events_keep_the_notice_their_reason_implied(templates: Templates, program: str, to_state: str, reason: str, kind: str) -> None:
    notice = notice_for_state_change(legacy_change(program, to_state, reason), FACTS, templates)
    assert notice is not None and notice.kind == kind
    assert_rendered(notice, templates)


def test_legacy_returned_and_paper_requested_take_their_reasons_from_the_reason(templates: Templates) -> None:
    returned = notice_for_state_change(
        legacy_change(LG, "returned", "缺少模型使用报告; 合同金额与发票不符", deadline=DEADLINE), FACTS, templates)
    assert returned is not None and "缺少模型使用报告；合同金额与发票不符" in returned.text
    paper = notice_for_state_change(legacy_change(SZ, "awaiting_paper", "paper_requested:合同原件核验; 发票原件核验"), FACTS, templates)
    assert paper is not None and "具体要求：合同原件核验；发票原件核验" in paper.text


def test_legacy_award_and_tier_are_remembered_from_reasons(templates: Templates) -> None:
    awarded = legacy_change(LG, "awaiting_publication", "award_fen:45000000", from_state="award_calculation")
    assert notice_for_state_change(awarded, FACTS, templates) is None
    facts = FACTS.after(awarded)
    assert facts.award_fen == 45_000_000
    notice = notice_for_state_change(legacy_change(LG, "published", "notice:LG-2025-GS-01"), facts, templates)
    assert notice is not None and "拟资助金额450,000.00元" in notice.text
    assert notice.idempotency_key == f"{LG_NO}:award_published:LG-2025-GS-01"
    tiered = legacy_change(SZ, "awaiting_publication", "tier:1; award_fen:450000000", from_state="tiering")
    sz_facts = FACTS.after(tiered)
    assert (sz_facts.tier, sz_facts.award_fen) == (1, 450_000_000)
    published = notice_for_state_change(legacy_change(SZ, "published", "notice:SZ-2025-01"), sz_facts, templates)
    assert published is not None and "拟予一档支持" in published.text


@pytest.mark.parametrize(
    ("program", "from_state", "to_state", "reason"),
    [
        (LG, None, "pre_check", "submitted"),
        (LG, "returned", "pre_check", "resubmitted:v2"),
        (LG, "pre_check", "online_review", "pre_checks_passed"),
        (LG, "pre_check", "online_review", "pre_checks_failed:industry_code"),
        (LG, "approved_online", "awaiting_gd_submission", "form_issued:F-1"),
        (LG, "awaiting_gd_submission", "back_office_review", "gd_case:GD-1"),
        (LG, "awaiting_sms_delivery", "awaiting_sms_delivery", "sms_receipt_missing"),
        (LG, "awaiting_sms_delivery", "awaiting_paper", "sms_delivered"),
        (LG, "awaiting_sms_delivery", "awaiting_paper", "confirmed_by_phone"),
        (LG, "awaiting_paper", "award_calculation", "paper_received:LG-W01"),
        (LG, "award_calculation", "awaiting_publication", "award_fen:45000000"),
        (LG, "online_review", "withdrawn", "withdrawn"),
        (SZ, None, "formal_pre_review", "submitted"),
        (SZ, "returned", "formal_pre_review", "resubmitted:v2"),
        (SZ, "awaiting_paper", "formal_pre_review", "paper_received:SZ-CIVIC-CENTER-WEST"),
        (SZ, "formal_pre_review", "expert_scoring", "formal_pre_review_passed"),
        (SZ, "expert_scoring", "tiering", "expert_score:250"),
        (SZ, "tiering", "awaiting_publication", "tier:2"),
        (SZ, "expert_scoring", "withdrawn", "changed our mind"),
    ],
)
def test_changes_without_sms(templates: Templates, program: str, from_state: str | None, to_state: str, reason: str) -> None:
    for event in (legacy_change(program, to_state, reason, from_state=from_state),
                  change(program, to_state, None, reason=reason, from_state=from_state)):  # fmt: skip
        assert notice_kind_for_state_change(event, templates) is None
        assert notice_for_state_change(event, FACTS, templates) is None


@pytest.mark.parametrize(
    ("program", "to_state", "reason"),
    [
        (LG, "awaiting_sms_delivery", "something_else"),
        (LG, "abandoned", "gave_up"),
        (SZ, "abandoned", "paper_deadline_passed"),  # Shenzhen's paper has no deadline
        (SZ, "awaiting_paper", "sms_delivered"),
    ],
)
def test_legacy_unknown_reasons_where_the_reason_decides_are_errors(templates: Templates, program: str, to_state: str, reason: str) -> None:
    with pytest.raises(UnexpectedTransition):
        notice_for_state_change(legacy_change(program, to_state, reason), FACTS, templates)


# --- template validation --------------------------------------------------------------------


@pytest.fixture()
def template_dir(tmp_path: Path) -> Path:
    for path in TEMPLATES_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_copied_templates_load(template_dir: Path) -> None:
    assert set(load_templates(template_dir, programs=load_programs()).programs) == {LG, SZ}


def test_missing_kind_names_file_and_kind(template_dir: Path) -> None:
    edit(template_dir / f"{LG}.toml", "[notices.back_office_approved]", "[unused.back_office_approved]")
    with pytest.raises(TemplateConfigError) as error:
        load_templates(template_dir, programs=load_programs())
    message = str(error.value)
    assert f"{LG}.toml" in message and "[notices.back_office_approved] is missing" in message


def test_unknown_placeholder_names_file_and_kind(template_dir: Path) -> None:
    edit(template_dir / f"{SZ}.toml", "拟资助金额{award_yuan}", "拟资助金额{award_wan}")
    with pytest.raises(TemplateConfigError) as error:
        load_templates(template_dir, programs=load_programs())
    message = str(error.value)
    assert f"{SZ}.toml [notices.published]" in message and "unknown placeholder {award_wan}" in message


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('tencent_params = ["applicant_name", "application_no", "deadline", "working_days_left"]',
         'tencent_params = ["applicant_name", "application_no", "deadline", "days_left"]', "not a placeholder of the text"),
        ('aliyun_template_code = "SMS_48210005"', 'aliyun_template_code = ""', "aliyun_template_code"),
        ('tencent_template_id = "2100005"', 'tencent_template_id = "SMS_48210005"', "tencent_template_id"),
        ("quiet_hours_exempt = false\n\n# 逾期", "\n# 逾期", "missing 'quiet_hours_exempt'"),
        ('sign_name = "龙岗区人工智能署"', 'sign_name = "深圳市龙岗区人工智能（机器人）署"', "sign_name"),
        ("[notices.paper_reminder]", "[notices.paper_reminders]", "unknown notice kind"),
        ("{deadline}前登录龙岗区", "{deadline!r}前登录龙岗区", "takes no format or conversion"),
        ("已通过线上终审。", "已通过线上终审{{}}。", "literal brace"),
    ],
)  # fmt: skip
def test_template_errors(template_dir: Path, old: str, new: str, problem: str) -> None:
    edit(template_dir / f"{LG}.toml", old, new)
    with pytest.raises(TemplateConfigError, match=f"{LG}.toml") as error:
        load_templates(template_dir, programs=load_programs())
    assert problem in str(error.value)


def test_a_kind_the_lifecycle_never_sends_is_an_error(template_dir: Path) -> None:
    path = template_dir / f"{SZ}.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + '\n[notices.paper_reminder]\ntext = "{applicant_name}"\naliyun_template_code = "SMS_1"\n'
        + 'tencent_template_id = "1"\ntencent_params = []\nquiet_hours_exempt = false\n',
        encoding="utf-8",
    )
    with pytest.raises(TemplateConfigError, match=r"\[notices.paper_reminder\]: lifecycle ShenzhenGovAiScenarioLifecycle never sends"):
        load_templates(template_dir, programs=load_programs())


def test_every_configured_program_needs_its_templates(template_dir: Path) -> None:
    (template_dir / f"{SZ}.toml").unlink()
    with pytest.raises(TemplateConfigError, match=f"no SMS templates for program {SZ}"):
        load_templates(template_dir, programs=load_programs())


# --- quiet hours ----------------------------------------------------------------------------


QUIET = QuietHours()


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (datetime(2026, 1, 5, 21, 0, tzinfo=SH), datetime(2026, 1, 6, 8, 0, tzinfo=SH)),
        (datetime(2026, 1, 5, 23, 30, tzinfo=SH), datetime(2026, 1, 6, 8, 0, tzinfo=SH)),
        (datetime(2026, 1, 6, 0, 30, tzinfo=SH), datetime(2026, 1, 6, 8, 0, tzinfo=SH)),
        (datetime(2026, 1, 6, 7, 59, tzinfo=SH), datetime(2026, 1, 6, 8, 0, tzinfo=SH)),
        (datetime(2025, 12, 31, 22, 0, tzinfo=SH), datetime(2026, 1, 1, 8, 0, tzinfo=SH)),
    ],
)
def test_quiet_hours_defer_to_the_next_morning(now: datetime, allowed: datetime) -> None:
    assert QUIET.is_quiet(now)
    assert QUIET.next_allowed(now) == allowed


@pytest.mark.parametrize("now", [datetime(2026, 1, 6, 8, 0, tzinfo=SH), datetime(2026, 1, 6, 20, 59, tzinfo=SH), datetime(2026, 1, 6, 4, 0, tzinfo=UTC)])
def test_outside_quiet_hours_now(now: datetime) -> None:
    assert not QUIET.is_quiet(now)
    assert QUIET.next_allowed(now) is now


def test_quiet_hours_in_shanghai_whatever_the_clock() -> None:
    assert QUIET.next_allowed(datetime(2026, 1, 5, 14, 0, tzinfo=UTC)) == datetime(2026, 1, 6, 8, 0, tzinfo=SH)  # 22:00 in Shenzhen
    with pytest.raises(ValueError):
        QUIET.next_allowed(datetime(2026, 1, 5, 22, 0))


def test_other_windows() -> None:
    midday = QuietHours(start=time(12, 0), end=time(14, 0))
    assert midday.next_allowed(datetime(2026, 1, 6, 12, 30, tzinfo=SH)) == datetime(2026, 1, 6, 14, 0, tzinfo=SH)
    never = QuietHours(start=time(0, 0), end=time(0, 0))
    now = datetime(2026, 1, 6, 3, 0, tzinfo=SH)
    assert never.next_allowed(now) is now


def test_exempt_kinds_are_not_deferred(templates: Templates) -> None:
    night = datetime(2026, 1, 5, 23, 0, tzinfo=SH)
    approval = notice_for_state_change(change(LG, "awaiting_sms_delivery", NoticeKind.BACK_OFFICE_APPROVED), FACTS, templates)
    returned = notice_for_state_change(change(SZ, "returned", NoticeKind.RETURNED, reasons=("缺材料",), deadline=DEADLINE), FACTS, templates)
    rejected = notice_for_state_change(change(LG, "rejected", NoticeKind.REJECTED, reasons=("不符合条件",)), FACTS, templates)
    assert approval is not None and returned is not None and rejected is not None
    assert QUIET.defer(approval, night) is night
    assert QUIET.defer(returned, night) is night
    assert QUIET.defer(rejected, night) == datetime(2026, 1, 6, 8, 0, tzinfo=SH)


def test_a_reminder_waits_for_the_morning_unless_stale(templates: Templates) -> None:
    notice = notice_for_reminder(reminder(datetime(2026, 1, 7, 9, 0, tzinfo=SH), 1), FACTS, templates)
    send_at = QUIET.defer(notice, datetime(2026, 1, 6, 22, 0, tzinfo=SH))  # relayed late, the night before
    assert send_at == datetime(2026, 1, 7, 8, 0, tzinfo=SH) and not notice.is_expired(send_at)
    late = QUIET.defer(notice, datetime(2026, 1, 7, 21, 30, tzinfo=SH))  # after the deadline: not worth sending
    assert notice.is_expired(late)


class _NoDatabase:
    """A pool that records that it was asked for a connection, and gives none."""

    def __init__(self) -> None:
        self.asked = 0

    def acquire(self) -> None:
        self.asked += 1
        raise ConnectionRefusedError("no database in this test")


@pytest.mark.parametrize(("event", "touches_database"), [
    (change(LG, "back_office_review", None), False),  # most changes: no notice, nothing to remember
    (change(SZ, "expert_scoring", None, tier=None), False),
    (change(SZ, "awaiting_publication", None, award_fen=300_000_000, tier=2), True),  # the award for the published SMS
    (change(LG, "awaiting_sms_delivery", NoticeKind.BACK_OFFICE_APPROVED), True),  # an SMS to queue
    (legacy_change(LG, "back_office_review", "online review approved"), True),  # may carry facts in its reason
])
async def test_notify_opens_a_transaction_only_for_a_change_that_needs_one(
    templates: Templates, event: ApplicationStateChanged, touches_database: bool,
) -> None:
    from services.notify.service import Notifier

    pool = _NoDatabase()
    notifier = Notifier(pool=pool, cipher=None, templates=templates, quiet_hours=QuietHours(), temporal=None,  # type: ignore[arg-type]
                        provider_names=("local",))
    if touches_database:
        with pytest.raises(ConnectionRefusedError):
            await notifier.on_state_changed(event)
    else:
        assert await notifier.on_state_changed(event) is None
    assert pool.asked == int(touches_database)
