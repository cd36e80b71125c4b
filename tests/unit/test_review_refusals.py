"""The workflow's refusals as answers (services/review/decisions/refusals.py), without servers."""

from __future__ import annotations

import pytest

from services.review.decisions.refusals import refusal, refusal_of


@pytest.mark.parametrize(("reason", "status", "code"), [
    ("forbidden: role window_clerk may not take this decision", 403, "forbidden"),
    ("wrong_state: the application is back_office_review, this decision needs ['online_review']", 409, "wrong_state"),
    ("late: paper received after the deadline (逾期视作放弃)", 422, "late"),
    ("invalid: reached_at is in the future", 422, "invalid"),
    ("incomplete: 2 bound and stamped copies are required", 422, "incomplete"),
    ("wrong_form: the paper form is not the one the platform issued", 422, "wrong_form"),
    ("wrong_window: Longgang paper is received at windows LG-W01..LG-W13", 422, "wrong_window"),
    ("over_cap: tier 1 is capped at 500000000 fen", 422, "over_cap"),
    ("stale: version 2 is not newer than 2", 409, "stale"),
    ("empty: no application is on the list", 409, "empty"),
    ("something the validator never said before", 422, "refused"),
])
def test_each_reason_becomes_a_status_a_code_and_a_chinese_message(reason: str, status: int, code: str) -> None:
    answer = refusal_of(reason)
    assert (answer.status, answer.code, answer.reason) == (status, code, reason)
    assert answer.message and all(not ch.isascii() or ch in " ，。：（）()" for ch in answer.message[:2])


def test_two_decisions_in_one_activation_is_a_conflict() -> None:
    answer = refusal_of("another decision is being applied; retry", error_type="Conflict")
    assert (answer.status, answer.code) == (409, "conflict")
    assert "另一位工作人员" in answer.message


def test_the_apis_own_refusals() -> None:
    assert refusal("not_found").status == 404 and refusal("program_not_found").status == 404
    assert refusal("invalid_input").status == 422 and refusal("task_closed").status == 409
    assert refusal("forbidden", message="只能登记本窗口收取的纸质材料").message == "只能登记本窗口收取的纸质材料"


def test_every_validator_refusal_code_but_busy_has_an_answer() -> None:
    from subsidy.contracts.lifecycle import RefusalCode

    for code in RefusalCode:
        if code is RefusalCode.BUSY:
            continue
        answer = refusal_of(f"{code.value}: something")
        assert answer.code == code.value and answer.status in (403, 409, 422), code


def test_a_decision_overtaken_by_the_withdrawal_is_a_409_that_says_so() -> None:
    """Issue 14, defect 6: the workflow fails such an update with type Withdrawn."""
    from workflows.lifecycle.base import WITHDRAWN_REFUSAL

    answer = refusal_of(WITHDRAWN_REFUSAL, error_type="Withdrawn")
    assert (answer.status, answer.code) == (409, "wrong_state")
    assert "撤回" in answer.message
