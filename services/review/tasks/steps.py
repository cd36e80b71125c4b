"""Which statuses wait for a person, and who that person is: the task read model's one rule.

A step opens a task when an application reaches it (a state change to its status) and closes it
when the application leaves that status. `awaiting_sms_delivery` waits for a person only once the
lifecycle records `sms_receipt_missing` (a reviewer phones the enterprise); notify's phone tasks
(an SMS no provider could deliver) open the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from subsidy.identity.claims import StaffRole


class Step(StrEnum):
    ONLINE_REVIEW = "online_review"  # LG 线上审核
    BACK_OFFICE_REVIEW = "back_office_review"  # LG 后台审核
    CONFIRM_NOTICE_BY_PHONE = "confirm_notice_by_phone"  # no SMS receipt, or an SMS no provider delivered
    PAPER = "paper"  # paper materials at a window (LG within 5 working days; SZ by appointment)
    FORMAL_PRE_REVIEW = "formal_pre_review"  # SZ 形式预审
    EXPERT_SCORING = "expert_scoring"  # SZ 专家评审
    TIERING = "tiering"  # SZ 档次
    AWARD = "award"  # LG award calculation
    PUBLICATION = "publication"  # on the list for 公示, until the administrator publishes
    NOTICE_OBJECTION = "notice_objection"  # an objection (异议) to a 公示 entry: uphold or dismiss


STEP_NAMES_ZH: dict[Step, str] = {
    Step.ONLINE_REVIEW: "线上审核",
    Step.BACK_OFFICE_REVIEW: "后台审核",
    Step.CONFIRM_NOTICE_BY_PHONE: "电话通知确认",
    Step.PAPER: "纸质材料收件",
    Step.FORMAL_PRE_REVIEW: "形式预审",
    Step.EXPERT_SCORING: "专家评审",
    Step.TIERING: "确定档次",
    Step.AWARD: "核定资助金额",
    Step.PUBLICATION: "公示",
    Step.NOTICE_OBJECTION: "公示异议处理",
}

PHONE_REASON = "sms_receipt_missing"


@dataclass(frozen=True)
class StepSpec:
    step: Step
    role: StaffRole


_BY_STATUS: dict[str, StepSpec] = {
    "online_review": StepSpec(Step.ONLINE_REVIEW, StaffRole.LG_ONLINE_REVIEWER),
    "back_office_review": StepSpec(Step.BACK_OFFICE_REVIEW, StaffRole.LG_BACK_OFFICE_REVIEWER),
    "awaiting_paper": StepSpec(Step.PAPER, StaffRole.WINDOW_CLERK),
    "formal_pre_review": StepSpec(Step.FORMAL_PRE_REVIEW, StaffRole.SZ_PRE_REVIEWER),
    # SZ: the administrator composes the panel; each assigned expert then gets a task of their own
    # (services/review/scoring/service.py), and a decline gives the administrator a task again.
    "expert_scoring": StepSpec(Step.EXPERT_SCORING, StaffRole.PROGRAM_ADMIN),
    "tiering": StepSpec(Step.TIERING, StaffRole.PROGRAM_ADMIN),
    "award_calculation": StepSpec(Step.AWARD, StaffRole.PROGRAM_ADMIN),
}
# `awaiting_publication` opens no task by itself: the publication task opens when the application
# is on its batch's list (review's `publication.enlist` activity), so the administrator never
# publishes a list the application has not reached yet.
PUBLICATION = StepSpec(Step.PUBLICATION, StaffRole.PROGRAM_ADMIN)
# Opened by an objection filed during the notice period (services/review/notice/), closed by its decision.
NOTICE_OBJECTION = StepSpec(Step.NOTICE_OBJECTION, StaffRole.PROGRAM_ADMIN)


PHONE_STEP_KEYS = frozenset({"lg_confirm_notice_by_phone"})  # subsidy.contracts.lifecycle.HUMAN_STEPS keys


def step_for(program: str, to_status: str, reason: str | None, *, awaiting_step: str | None = None,
             typed: bool = False) -> StepSpec | None:
    """The step a state change to `to_status` opens, or None when nobody has to act.

    `typed`: the event carries the workflow's typed fields (contract revision 2), so whether the
    phone step is open is its `awaiting_step`, never the reason's wording; an older event only has
    the reason (`sms_receipt_missing`)."""
    if to_status == "awaiting_sms_delivery":
        waiting_for_phone = awaiting_step in PHONE_STEP_KEYS if typed else reason == PHONE_REASON
        return phone_step(program) if waiting_for_phone else None
    return _BY_STATUS.get(to_status)


def phone_step(program: str) -> StepSpec:
    """Phoning an enterprise: Longgang's back office; Shenzhen's pre-reviewers, whose notices they are."""
    role = StaffRole.SZ_PRE_REVIEWER if program.startswith("SZ-") else StaffRole.LG_BACK_OFFICE_REVIEWER
    return StepSpec(Step.CONFIRM_NOTICE_BY_PHONE, role)
