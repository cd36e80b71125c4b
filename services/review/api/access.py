"""Who may do what: the one table of roles and actions (README, "The reviewers' API").

`can(principal, action, program, window=None)` answers for an action on an object of `program`
(and, for paper, at `window`). Scope comes first: a principal sees only the programs its token
names (an object outside them answers 404, its existence not revealed); within scope, a role
without the action answers 403. Experts further see only the applications assigned to them; that
needs the database and is checked by the routes (`sees_application`).
"""

from __future__ import annotations

from enum import StrEnum

from subsidy.identity.claims import Principal, StaffRole


class Action(StrEnum):
    DECIDE = "decide"  # `POST .../decisions` before the step is known: the review step's decision
    VIEW_TASKS = "view_tasks"
    VIEW_APPLICATION = "view_application"
    DECIDE_ONLINE_REVIEW = "decide_online_review"  # LG 线上审核: approve / return / reject
    DECIDE_BACK_OFFICE_REVIEW = "decide_back_office_review"  # LG 后台审核: approve / reject
    CONFIRM_NOTICE_BY_PHONE = "confirm_notice_by_phone"  # LG: the enterprise reached by phone
    DECIDE_FORMAL_PRE_REVIEW = "decide_formal_pre_review"  # SZ 形式预审: approve / return / reject / request_paper
    RECORD_PAPER_RECEIPT = "record_paper_receipt"  # paper received, at the clerk's own window
    RECORD_AWARD = "record_award"  # LG award: confirm the computed amount, or adjust it with a reason
    ASSIGN_EXPERT = "assign_expert"  # SZ: a panel of experts for a product (conflicts of interest refused)
    DECLINE_ASSIGNMENT = "decline_assignment"  # SZ: an expert declines an assignment, declaring a conflict
    SUBMIT_SCORE = "submit_score"  # SZ: an expert scores a product assigned to them, once
    VIEW_SCORES = "view_scores"  # SZ: every expert's scores and the tiering proposal (an expert: their own only)
    CONFIRM_TIERING = "confirm_tiering"  # SZ: the batch's tiers and amounts as the platform computed them
    RECORD_PANEL_RESULT = "record_panel_result"  # SZ: ask the platform again to record a complete panel's result
    REASSIGN_TASK = "reassign_task"
    PUBLISH = "publish"  # a program batch's list for public notice (公示)
    READ_AUDIT = "read_audit"
    # awards-api (issue 11)
    VIEW_AWARD = "view_award"  # the computed award's breakdown (LG)
    ACKNOWLEDGE_DUPLICATE = "acknowledge_duplicate"  # a duplicate / multi-source claim flag, seen by a reviewer
    # issue 13 (services/review/notice/): the notice list's preview, versions, exports; objections.
    VIEW_NOTICE = "view_notice"
    DECIDE_OBJECTION = "decide_objection"
    # budget (issue 11, wave 3): the LG batch budget applied to the unpublished list (按比例核减)
    APPLY_BUDGET = "apply_budget"


_READ = frozenset({Action.VIEW_TASKS, Action.VIEW_APPLICATION})

PERMISSIONS: dict[StaffRole, frozenset[Action]] = {
    StaffRole.LG_ONLINE_REVIEWER: _READ | {Action.DECIDE_ONLINE_REVIEW, Action.ACKNOWLEDGE_DUPLICATE},
    StaffRole.LG_BACK_OFFICE_REVIEWER: _READ | {Action.DECIDE_BACK_OFFICE_REVIEW, Action.CONFIRM_NOTICE_BY_PHONE,
                                                Action.ACKNOWLEDGE_DUPLICATE},
    StaffRole.WINDOW_CLERK: _READ | {Action.RECORD_PAPER_RECEIPT},
    StaffRole.SZ_PRE_REVIEWER: _READ | {Action.DECIDE_FORMAL_PRE_REVIEW, Action.ACKNOWLEDGE_DUPLICATE},
    StaffRole.EXPERT: _READ | {Action.SUBMIT_SCORE, Action.DECLINE_ASSIGNMENT},  # only applications assigned to them
    StaffRole.PROGRAM_ADMIN: _READ | {
        Action.RECORD_AWARD, Action.VIEW_AWARD, Action.ASSIGN_EXPERT, Action.VIEW_SCORES, Action.CONFIRM_TIERING,
        Action.RECORD_PANEL_RESULT, Action.REASSIGN_TASK, Action.PUBLISH, Action.VIEW_NOTICE, Action.DECIDE_OBJECTION,
        Action.APPLY_BUDGET,
    },
    StaffRole.AUDITOR: _READ | {Action.READ_AUDIT, Action.VIEW_SCORES, Action.VIEW_AWARD, Action.VIEW_NOTICE},
}

ACTION_NAMES_ZH: dict[Action, str] = {
    Action.DECIDE: "审核决定",
    Action.VIEW_TASKS: "查看待办",
    Action.VIEW_APPLICATION: "查看申报",
    Action.DECIDE_ONLINE_REVIEW: "线上审核决定",
    Action.DECIDE_BACK_OFFICE_REVIEW: "后台审核决定",
    Action.CONFIRM_NOTICE_BY_PHONE: "电话通知确认",
    Action.DECIDE_FORMAL_PRE_REVIEW: "形式预审决定",
    Action.RECORD_PAPER_RECEIPT: "登记纸质材料收件",
    Action.RECORD_AWARD: "确认资助金额",
    Action.ASSIGN_EXPERT: "分配评审专家组",
    Action.DECLINE_ASSIGNMENT: "回避评审任务",
    Action.SUBMIT_SCORE: "提交专家评分",
    Action.VIEW_SCORES: "查看专家评分和档次",
    Action.CONFIRM_TIERING: "确认档次和资助金额",
    Action.RECORD_PANEL_RESULT: "重新记录专家组评审结果",
    Action.REASSIGN_TASK: "转派待办",
    Action.PUBLISH: "发布公示",
    Action.READ_AUDIT: "查看审计日志",
    Action.VIEW_AWARD: "查看资助金额核定明细",
    Action.ACKNOWLEDGE_DUPLICATE: "确认已知悉重复申报提示",
    Action.VIEW_NOTICE: "查看公示名单",
    Action.DECIDE_OBJECTION: "处理公示异议",
    Action.APPLY_BUDGET: "按预算比例核减资助金额",
}


def in_scope(principal: Principal, program: str) -> bool:
    """The program is one of the principal's and it holds at least one role there."""
    return principal.in_program(program) and bool(principal.roles)


def role_for(principal: Principal, action: Action) -> StaffRole | None:
    """The principal's role that grants `action` (the first in the table's order), or None."""
    return next((role for role in PERMISSIONS if role in principal.roles and action in PERMISSIONS[role]), None)


def can(principal: Principal, action: Action, program: str, window: str | None = None) -> bool:
    if not in_scope(principal, program) or role_for(principal, action) is None:
        return False
    if action is Action.RECORD_PAPER_RECEIPT:
        return principal.window is not None and (window is None or window == principal.window)
    return True


def sees_panel(principal: Principal, program: str) -> bool:
    """Whether an application's page may name its expert panel and what each expert did (their
    scores, justifications, declines, tasks). Whoever may view the scores (administrators,
    auditors) may; an expert otherwise never learns who else is on a panel or what they scored
    (README: "sees only their own scores"), whatever other reading role they also hold. Reviewers
    who are no expert (pre-reviewers) are on no panel and read the application's history as it is."""
    return can(principal, Action.VIEW_SCORES, program) or not principal.has(StaffRole.EXPERT)
