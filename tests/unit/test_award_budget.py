"""The Longgang batch budget (按比例核减): the arithmetic's edge cases not covered in
test_awards_longgang.py, the list's position against the budget, and Shenzhen 03(四) from the
duplicate flags."""

from __future__ import annotations

import pytest

from services.review.awards.budget import Line, Position
from services.review.awards.money import prorate_to_budget
from services.review.duplicates.detect import claim_from_facts, find_duplicates
from services.review.rules.shenzhen_eligibility import multi_source_finding, shenzhen_eligibility
from subsidy.programs import programs
from tests.fixtures import events

SZ = "SZ-GOVAI-SCENARIO-2025"


# --- 按比例核减 -----------------------------------------------------------------------------------


def test_a_budget_of_zero_gives_nothing_to_anyone() -> None:
    assert prorate_to_budget({"LG2025-000001": 100, "LG2025-000002": 1}, 0) == {"LG2025-000001": 0, "LG2025-000002": 0}


def test_a_budget_equal_to_the_total_changes_nothing_and_one_fen_less_takes_one_fen() -> None:
    awards = {"LG2025-000001": 3_000_000, "LG2025-000002": 6_000_001, "LG2025-000003": 1_000_000}
    assert prorate_to_budget(awards, 10_000_001) == awards
    less = prorate_to_budget(awards, 10_000_000)
    assert sum(less.values()) == 10_000_000
    assert sorted(awards[k] - less[k] for k in awards) == [0, 0, 1]  # the fen comes off the smallest remainder


def test_the_missing_fen_go_to_the_largest_remainders_then_the_lower_application_number() -> None:
    # floors: 2,099,999 / 4,200,000 / 699,999 (remainders .79 / .28 / .93 of a fen): 2 fen missing
    awards = {"LG2025-000001": 3_000_000, "LG2025-000002": 6_000_001, "LG2025-000003": 1_000_000}
    assert prorate_to_budget(awards, 7_000_000) == {"LG2025-000001": 2_100_000, "LG2025-000002": 4_200_000, "LG2025-000003": 700_000}
    # three equal remainders, one fen missing: the lowest application number takes it, whatever the input order
    assert prorate_to_budget({"LG2025-000009": 1, "LG2025-000002": 1, "LG2025-000005": 1}, 1) == {
        "LG2025-000009": 0, "LG2025-000002": 1, "LG2025-000005": 0}


def test_a_cap_below_the_proportional_share_is_held_and_the_total_is_what_the_caps_allow() -> None:
    # Capped first (B at 100): 400 + 100 = 500 over a budget of 450: 360 + 90.
    assert prorate_to_budget({"A": 400, "B": 300}, 450, caps={"B": 100}) == {"A": 360, "B": 90}
    # Capped within the budget: the caps, not the budget, bound the total.
    assert prorate_to_budget({"A": 400, "B": 300}, 600, caps={"B": 100}) == {"A": 400, "B": 100}


def test_amounts_of_a_whole_district_budget_stay_exact_integers() -> None:
    awards = {f"LG2025-{n:06d}": 200_000_000 - n * 7 for n in range(1, 1_001)}  # a thousand awards near CNY 2M
    budget = 30_000_000_00 + 1  # CNY 30M and one fen
    result = prorate_to_budget(awards, budget)
    assert sum(result.values()) == budget and all(isinstance(v, int) for v in result.values())
    assert all(0 <= result[k] <= awards[k] for k in awards)
    assert all(abs(result[k] * sum(awards.values()) - awards[k] * budget) < sum(awards.values()) for k in awards)  # within a fen


# --- the list against the budget ----------------------------------------------------------------


def line(no: str, confirmed: int, listed: int, prorated: int) -> Line:
    return Line(application_no=no, workflow_id=f"Application:LG:{no}", applicant_uscc=None, cap_year=None,
                confirmed_fen=confirmed, listed_fen=listed, cap_fen=confirmed, prorated_fen=prorated)


def test_the_position_of_a_list_over_the_budget_then_applied() -> None:
    over = Position("LG-AI-MODEL-2025", 1_000, False, None, 200, (line("A", 600, 600, 400), line("B", 600, 600, 400)))
    assert (over.available_fen, over.confirmed_total_fen, over.listed_total_fen) == (800, 1_200, 1_200)
    assert over.over_budget and not over.applied and [x.application_no for x in over.to_revise] == ["A", "B"]
    assert over.view()["publishable"] is False
    applied = Position("LG-AI-MODEL-2025", 1_000, False, None, 200, (line("A", 600, 400, 400), line("B", 600, 400, 400)))
    assert applied.over_budget and applied.applied and applied.view()["publishable"] is True


def test_earlier_lists_over_the_budget_leave_nothing_never_a_negative_amount() -> None:
    spent = Position("LG-AI-MODEL-2025", 1_000, False, None, 1_500, (line("A", 300, 300, 0),))
    assert spent.available_fen == 0 and spent.over_budget and spent.to_revise


def test_a_list_lowered_earlier_and_now_within_the_budget_is_restored() -> None:
    # An application withdrew after the budget was applied: the rest fit, their confirmed amounts come back.
    restored = Position("LG-AI-MODEL-2025", 1_000, False, None, 0, (line("A", 600, 400, 600),))
    assert not restored.over_budget and not restored.applied and restored.to_revise[0].prorated_fen == 600


# --- Shenzhen 03(四) from the duplicate flags --------------------------------------------------------


def test_the_same_product_claimed_by_another_applicant_needs_a_person_naming_the_linked_application() -> None:
    config = programs()[SZ].pre_checks
    mine, theirs = events.shenzhen_submitted(), events.shenzhen_submitted()
    mine["declarations"]["other_municipal_support_for_same_product"] = False
    theirs["applicant"]["uscc"] = events.APPLICANT_USCC
    flags = find_duplicates([claim_from_facts(SZ, "SZ2025-004512", mine), claim_from_facts(SZ, "SZ2025-004513", theirs)])
    alone = multi_source_finding(mine, config=config)
    flagged = multi_source_finding(mine, config=config, duplicate_flags=flags["SZ2025-004512"])
    assert alone.status == "passed"
    assert flagged.status == "needs_person" and flagged.clause == "03(四)"
    assert "SZ2025-004513" in flagged.explanation and "其他申报单位申报了同一产品" in flagged.explanation
    assert "请人工判断" in flagged.explanation  # for a person: never a rejection
    # The same finding as the whole check gives.
    whole = {f.rule: f for f in shenzhen_eligibility(mine, config=config, catalog=None, duplicate_flags=flags["SZ2025-004512"])}
    assert whole["no_multi_source_claim"] == flagged


@pytest.mark.parametrize("declared", [False, None])
def test_the_applicant_in_the_other_program_needs_a_person_whatever_it_declared(declared: bool | None) -> None:
    config = programs()[SZ].pre_checks
    sz = events.shenzhen_submitted()
    sz["declarations"]["other_municipal_support_for_same_product"] = declared
    lg = events.longgang_submitted()
    lg["applicant"]["uscc"] = sz["applicant"]["uscc"]
    flags = find_duplicates([claim_from_facts(SZ, "SZ2025-000001", sz), claim_from_facts("LG-AI-MODEL-2025", "LG2025-000001", lg)])
    finding = multi_source_finding(sz, config=config, duplicate_flags=flags["SZ2025-000001"])
    assert finding.status == "needs_person" and "LG2025-000001" in finding.explanation
    assert finding.evidence["flags"] == [{"kind": "cross_program_applicant", "key": sz["applicant"]["uscc"], "others": ["LG2025-000001"]}]
