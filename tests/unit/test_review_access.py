"""The role x action table (services/review/api/access.py), without servers."""

from __future__ import annotations

import pytest

from services.review.api.access import PERMISSIONS, Action, can, in_scope, role_for
from subsidy.identity.claims import Principal, StaffRole

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"


def person(*roles: StaffRole, programs: tuple[str, ...] = (LG,), window: str | None = None) -> Principal:
    return Principal(subject="u-1", name="张敏", roles=frozenset(roles), programs=frozenset(programs), window=window)


# Every (role, action) the README's table grants; everything else is refused.
GRANTED = {
    StaffRole.LG_ONLINE_REVIEWER: {Action.DECIDE_ONLINE_REVIEW, Action.ACKNOWLEDGE_DUPLICATE},
    StaffRole.LG_BACK_OFFICE_REVIEWER: {Action.DECIDE_BACK_OFFICE_REVIEW, Action.CONFIRM_NOTICE_BY_PHONE, Action.ACKNOWLEDGE_DUPLICATE},
    StaffRole.WINDOW_CLERK: {Action.RECORD_PAPER_RECEIPT},
    StaffRole.SZ_PRE_REVIEWER: {Action.DECIDE_FORMAL_PRE_REVIEW, Action.ACKNOWLEDGE_DUPLICATE},
    StaffRole.EXPERT: {Action.SUBMIT_SCORE, Action.DECLINE_ASSIGNMENT},
    StaffRole.PROGRAM_ADMIN: {Action.RECORD_AWARD, Action.VIEW_AWARD, Action.ASSIGN_EXPERT, Action.VIEW_SCORES,
                              Action.CONFIRM_TIERING, Action.RECORD_PANEL_RESULT, Action.REASSIGN_TASK, Action.PUBLISH,
                              Action.VIEW_NOTICE, Action.DECIDE_OBJECTION, Action.APPLY_BUDGET},
    StaffRole.AUDITOR: {Action.READ_AUDIT, Action.VIEW_SCORES, Action.VIEW_AWARD, Action.VIEW_NOTICE},
}
READS = {Action.VIEW_TASKS, Action.VIEW_APPLICATION}


@pytest.mark.parametrize("role", list(StaffRole))
@pytest.mark.parametrize("action", list(Action))
def test_each_role_may_exactly_its_actions_in_its_program(role: StaffRole, action: Action) -> None:
    principal = person(role, window="LG-W03" if role is StaffRole.WINDOW_CLERK else None)
    expected = action in GRANTED[role] | READS
    assert can(principal, action, LG) is expected
    assert can(principal, action, SZ) is False  # another program: nothing at all
    assert (role_for(principal, action) is role) is expected


def test_the_generic_decide_action_is_nobodys_until_the_step_is_known() -> None:
    assert all(Action.DECIDE not in actions for actions in PERMISSIONS.values())


def test_a_clerk_records_paper_at_their_own_window_only() -> None:
    clerk = person(StaffRole.WINDOW_CLERK, window="LG-W03")
    assert can(clerk, Action.RECORD_PAPER_RECEIPT, LG, window="LG-W03")
    assert can(clerk, Action.RECORD_PAPER_RECEIPT, LG)  # no window named: their own
    assert not can(clerk, Action.RECORD_PAPER_RECEIPT, LG, window="LG-W04")
    assert not can(person(StaffRole.WINDOW_CLERK), Action.RECORD_PAPER_RECEIPT, LG)  # a clerk without a window


def test_a_token_without_roles_or_programs_is_in_no_scope() -> None:
    assert not in_scope(person(), LG)
    assert not in_scope(person(StaffRole.AUDITOR, programs=()), LG)
    assert in_scope(person(StaffRole.AUDITOR, programs=(LG, SZ)), SZ)


def test_roles_add_up() -> None:
    both = person(StaffRole.LG_ONLINE_REVIEWER, StaffRole.PROGRAM_ADMIN)
    assert can(both, Action.DECIDE_ONLINE_REVIEW, LG) and can(both, Action.PUBLISH, LG)
    assert role_for(both, Action.PUBLISH) is StaffRole.PROGRAM_ADMIN
    assert not can(both, Action.READ_AUDIT, LG)


def test_the_api_and_the_workflows_agree_on_who_takes_each_step() -> None:
    """The first wall (the access table) and the second (the validators' HUMAN_STEPS) name the same role."""
    from services.review.decisions.actions import UPDATES
    from subsidy.contracts.lifecycle import HUMAN_STEPS

    for action, update in UPDATES.items():
        steps = [s for s in HUMAN_STEPS.values() if s.update == update.update]
        assert steps, action
        assert all(update.role in s.roles for s in steps), action
        staff = role_for(person(*StaffRole, window="LG-W03"), action)
        assert staff is not None and staff.value == update.role.value, action
