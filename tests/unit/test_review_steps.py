"""Which state changes open a task, and for whom (services/review/tasks/steps.py)."""

from __future__ import annotations

import pytest

from services.review.tasks.steps import Step, step_for
from subsidy.identity.claims import StaffRole

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"


@pytest.mark.parametrize(("program", "status", "reason", "step", "role"), [
    (LG, "online_review", "pre_checks_passed", Step.ONLINE_REVIEW, StaffRole.LG_ONLINE_REVIEWER),
    (LG, "back_office_review", "gd_case:X", Step.BACK_OFFICE_REVIEW, StaffRole.LG_BACK_OFFICE_REVIEWER),
    (LG, "awaiting_sms_delivery", "sms_receipt_missing", Step.CONFIRM_NOTICE_BY_PHONE, StaffRole.LG_BACK_OFFICE_REVIEWER),
    (LG, "awaiting_paper", "sms_delivered", Step.PAPER, StaffRole.WINDOW_CLERK),
    (LG, "award_calculation", "paper_received:LG-W03", Step.AWARD, StaffRole.PROGRAM_ADMIN),
    (SZ, "formal_pre_review", "submitted", Step.FORMAL_PRE_REVIEW, StaffRole.SZ_PRE_REVIEWER),
    (SZ, "awaiting_paper", "paper_requested", Step.PAPER, StaffRole.WINDOW_CLERK),
    (SZ, "expert_scoring", None, Step.EXPERT_SCORING, StaffRole.PROGRAM_ADMIN),
    (SZ, "tiering", None, Step.TIERING, StaffRole.PROGRAM_ADMIN),
])
def test_a_step_that_waits_for_a_person_opens_a_task_for_its_role(program, status, reason, step, role) -> None:
    spec = step_for(program, status, reason)
    assert spec is not None and (spec.step, spec.role) == (step, role)


@pytest.mark.parametrize("status", ["pre_check", "returned", "approved_online", "awaiting_gd_submission",
                                    "awaiting_sms_delivery", "awaiting_publication", "published", "rejected", "withdrawn", "abandoned"])
def test_steps_that_wait_for_the_enterprise_or_the_platform_open_none(status: str) -> None:
    assert step_for(LG, status, "back_office_approved") is None


def test_the_phone_step_follows_the_typed_field_not_the_reasons_wording() -> None:
    phone = step_for(LG, "awaiting_sms_delivery", "短信回执缺失", awaiting_step="lg_confirm_notice_by_phone", typed=True)
    assert phone is not None and phone.step is Step.CONFIRM_NOTICE_BY_PHONE
    assert step_for(LG, "awaiting_sms_delivery", "sms_receipt_missing", awaiting_step=None, typed=True) is None
    legacy = step_for(LG, "awaiting_sms_delivery", "sms_receipt_missing")  # an event from before the typed fields
    assert legacy is not None and legacy.role is StaffRole.LG_BACK_OFFICE_REVIEWER
