"""The console shows officials dates, amounts and names as they read them."""

from datetime import UTC, date, datetime

import pytest

from services.review.console import format as fmt
from subsidy.contracts.lifecycle import Status
from subsidy.identity.claims import StaffRole


def test_a_deadline_reads_in_shanghai_with_its_weekday() -> None:
    assert fmt.datetime_zh("2026-01-07T18:00:00+08:00") == "2026年1月7日 18:00（星期三）"
    assert fmt.datetime_zh(datetime(2026, 1, 7, 10, 0, tzinfo=UTC)) == "2026年1月7日 18:00（星期三）"
    assert fmt.datetime_zh("2025-12-31T16:30:00+00:00") == "2026年1月1日 00:30（星期四）"
    assert fmt.datetime_zh(None) == "—"


def test_a_time_without_zone_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError):
        fmt.datetime_zh("2026-01-07T18:00:00")


def test_dates() -> None:
    assert fmt.date_zh("2026-01-09") == "2026年1月9日（星期五）"
    assert fmt.date_zh(date(2026, 1, 10)) == "2026年1月10日（星期六）"
    assert fmt.date_zh("2026-01-09T23:30:00+00:00") == "2026年1月10日（星期六）"


def test_amounts_from_integer_fen() -> None:
    assert fmt.yuan(123456) == "1,234.56"
    assert fmt.yuan(5) == "0.05"
    assert fmt.yuan(0) == "0.00"
    assert fmt.wan_yuan(200_000_000) == "200.00"  # CNY 2,000,000 cap
    assert fmt.wan_yuan(123_456_789) == "123.46"
    assert fmt.yuan(None) == "—"


def test_amounts_typed_in_yuan() -> None:
    assert fmt.fen_from_yuan("1,234.5") == 123450
    assert fmt.fen_from_yuan(" 600000 ") == 60_000_000
    for bad in ("", "-1", "1.234", "abc"):
        with pytest.raises(ValueError):
            fmt.fen_from_yuan(bad)


def test_every_status_has_its_chinese_name() -> None:
    assert set(fmt.STATUS_NAMES_ZH) == set(Status)
    assert fmt.status_zh("approved_online") == "已通过线上终审"
    assert fmt.status_zh("returned") == "退回修改"
    assert fmt.status_zh("abandoned") == "逾期视作放弃"
    assert fmt.status_zh("awaiting_publication") == "待公示"
    assert fmt.status_zh("published") == "已公示"
    assert fmt.status_zh("formal_pre_review") == "形式预审"


def test_steps_roles_and_decisions() -> None:
    assert fmt.step_zh("back_office_review") == "后台审核"
    assert fmt.step_zh("expert_scoring") == "专家评审"
    assert fmt.role_zh(StaffRole.WINDOW_CLERK.value) == "窗口收件员"
    assert fmt.decision_zh("return") == "退回修改"
    assert fmt.actor_zh("staff:lg-rev-01") == "lg-rev-01"
    assert fmt.program_zh("LG-AI-MODEL-2025") == "龙岗区调用模型开发应用扶持"


def test_every_sms_notice_has_its_chinese_name() -> None:
    from subsidy.contracts.lifecycle import NoticeKind

    assert set(fmt.NOTICE_NAMES_ZH) == {k.value for k in NoticeKind}
    assert fmt.sms_status_zh("phone_task") == "转电话通知"


def test_lifecycle_reasons_read_as_sentences_and_officials_words_as_written() -> None:
    assert fmt.reason_zh("sms_receipt_missing") == "未收到短信送达回执，须电话通知"
    assert fmt.reason_zh("award_fen:45000000") == "核定资助 450,000.00 元"
    assert fmt.reason_zh("tier:2; award_fen:250000000") == "档次 二档，资助 2,500,000.00 元"
    assert fmt.reason_zh("product_score:81.00") == "专家评审综合得分 81.00 分"
    assert "总分" not in fmt.reason_zh("expert_score:240")  # runs recorded before: an unweighted sum, not the score
    assert fmt.reason_zh("paper_received:LG-W03") == "窗口 LG-W03 已收纸质材料"
    assert fmt.reason_zh("back_office_approved") == "已发送后台审核通过通知"
    assert fmt.reason_zh("请补充近两年财务审计报告") == "请补充近两年财务审计报告"
    assert fmt.reason_zh("something_new") == "something_new"


def test_failed_pre_checks_and_the_phone_in_the_history() -> None:
    assert fmt.reason_zh("pre_checks_failed:materials_complete,industry_code") == "自动核查未通过：申报材料齐全、行业代码"
    assert fmt.reason_zh("confirmed_by_phone") == "已电话通知申报单位，开始计算纸质材料期限"
    assert fmt.actor_zh("portal") == "申报单位（申报系统）"


def test_every_longgang_rule_has_a_short_name() -> None:
    from services.review.rules.longgang import EXPLANATIONS

    assert set(fmt.RULE_NAMES_ZH) == set(EXPLANATIONS)


def test_a_refusal_recorded_by_the_api_reads_in_chinese_with_its_detail() -> None:
    assert fmt.refusal_zh("conflict_of_interest: conflict_of_interest: expert-04") == "存在利益冲突：expert-04"
    assert fmt.refusal_zh("too_few_experts: 2 < 3") == "评审专家人数不足：2 < 3"
    assert fmt.refusal_zh("forbidden") == "无权限"
    assert fmt.refusal_zh("something new: x") == "something new: x"  # unknown codes are shown as recorded
    assert fmt.refusal_zh(None) == fmt.EMPTY


def test_every_api_action_has_its_chinese_name_in_the_console() -> None:
    from services.review.api.access import Action

    assert {a.value for a in Action} <= set(fmt.ACTION_NAMES_ZH)


def test_the_rounding_rule_reads_as_the_program_configures_it() -> None:
    from types import SimpleNamespace

    from subsidy.programs import programs

    assert fmt.rounding_zh(programs()["LG-AI-MODEL-2025"].award) == "按比例计算后向下取整到分"  # the toml floors
    assert fmt.rounding_zh(SimpleNamespace(rounding="half_up", rounding_unit_fen=100)) == "按比例计算后四舍五入到元"
    assert fmt.rounding_zh(None) == fmt.EMPTY


def test_objection_states_and_deadline_triggers_read_in_chinese() -> None:
    assert [fmt.objection_status_zh(s) for s in ("open", "upheld", "dismissed")] == ["待处理", "异议成立", "异议不成立"]
    assert fmt.trigger_kind_zh("confirmed_by_phone") == "电话通知确认"
    assert fmt.action_zh("record_objection") == "登记公示异议"


def test_an_amount_the_budget_changed_reads_from_to_with_the_difference() -> None:
    assert fmt.budget_change_zh(6_000_001, 4_200_000) == "60,000.01 元 → 42,000.00 元（核减 18,000.01 元）"
    assert fmt.budget_change_zh(4_200_000, 6_000_001) == "42,000.00 元 → 60,000.01 元（恢复 18,000.01 元）"
    assert fmt.budget_change_zh(1_000_000, 1_000_000) == "10,000.00 元（未变）"
    assert fmt.budget_change_zh(None, 1) == "—"


def test_a_share_of_the_budget_is_a_percentage_rounded_half_up() -> None:
    assert fmt.share_zh(7_000_000, 10_000_001) == "70.00%"  # 69.9999930...
    assert fmt.share_zh(1, 8) == "12.50%"
    assert fmt.share_zh(1, 20_000) == "0.01%"  # 0.005: half up
    assert fmt.share_zh(1, 200_000) == "0.00%"  # 0.0005
    assert fmt.share_zh(12_000_000, 10_000_000) == "120.00%"
    assert fmt.share_zh(5, 0) == "—" and fmt.share_zh(None, 5) == "—"
