"""Shenzhen's expert scores, tiers and amounts (notice 02(一), 02(二), 02(四)) from the 2025 batch's
[scoring]: weighted criteria, trimmed mean from five experts, one half-up rounding, tier thresholds,
tier maxima 5M / 3M / 1M, the year's budget pro rata, and at most 10M per applicant per year."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.review.awards.shenzhen import ScoredProduct, ScoringError, product_score, shenzhen_amounts, tier_for
from subsidy.programs import load_programs

SCORING = load_programs()["SZ-GOVAI-SCENARIO-2025"].scoring
assert SCORING is not None
M = 100_000_000  # CNY 1M in fen


def scores(practicality: int, innovation: int, replicability: int) -> dict[str, int]:
    return {"practicality": practicality, "innovation": innovation, "replicability": replicability}


def test_the_2025_batch_configures_the_notices_criteria_and_tier_maxima() -> None:
    assert [c.name for c in SCORING.criteria] == ["实用性", "创新性", "可复制推广性"]
    assert SCORING.tier_maxima() == {1: 5 * M, 2: 3 * M, 3: 1 * M}
    assert SCORING.per_applicant_yearly_cap_fen == 10 * M and SCORING.min_experts == 3


def test_three_experts_weighted_then_averaged() -> None:
    result = product_score("SZ2025-004512", {
        "E1": scores(90, 80, 70),   # 40% 90 + 30% 80 + 30% 70 = 81.00
        "E2": scores(80, 80, 80),   # 80.00
        "E3": scores(100, 90, 95),  # 95.50
    }, SCORING)
    assert [e.score_text for e in result.experts] == ["81.00", "80.00", "95.50"]
    assert result.score_text == "85.50" and result.counted == 3 and not any(e.dropped for e in result.experts)
    assert (result.tier, result.tier_max_fen) == (1, 5 * M)
    assert [r.clause for r in result.reasons] == ["02(二)", "02(二)", "02(一)"]
    assert "第1档" in result.reasons[-1].text


def test_five_experts_drop_the_highest_and_the_lowest() -> None:
    result = product_score("SZ2025-000001", {
        "E1": scores(100, 100, 100),  # 100: dropped
        "E2": scores(80, 80, 80),
        "E3": scores(70, 70, 70),
        "E4": scores(75, 75, 75),
        "E5": scores(10, 10, 10),  # 10: dropped
    }, SCORING)
    assert {e.expert_id for e in result.experts if e.dropped} == {"E1", "E5"}
    assert result.counted == 3 and result.score_text == "75.00" and result.tier == 2
    assert "去掉一个最高分和一个最低分" in result.reasons[1].text


def test_four_experts_are_all_counted() -> None:
    result = product_score("SZ2025-000001", {f"E{i}": scores(p, p, p) for i, p in enumerate((100, 80, 70, 10))}, SCORING)
    assert result.counted == 4 and result.score_text == "65.00" and result.tier == 3


A = scores(80, 80, 80)  # weighted 80.00
B = scores(81, 79, 80)  # 40% 81 + 30% 79 + 30% 80 = 80.10


@pytest.mark.parametrize(
    ("experts", "decimals", "expected"),
    [
        ((A, A, B), 2, "80.03"),  # 80.0333...
        ((A, B, B), 2, "80.07"),  # 80.0666... up, not truncated to 80.06
        ((A, A, A, B), 2, "80.03"),  # 80.025: the half goes up
        ((A, A, A, B), 1, "80.0"),  # 80.025 to one decimal
        ((A, B, B, B), 1, "80.1"),  # 80.075 to one decimal
        ((A, B, B, B), 0, "80"),
    ],
)
def test_the_mean_is_rounded_half_up_once(experts: tuple[dict[str, int], ...], decimals: int, expected: str) -> None:
    config = SCORING.model_copy(update={"score_decimals": decimals})
    result = product_score("SZ2025-1", {f"E{i}": s for i, s in enumerate(experts)}, config)
    assert result.score_text == expected


@pytest.mark.parametrize(("units", "tier"), [(10000, 1), (8500, 1), (8499, 2), (7500, 2), (7499, 3), (6000, 3), (5999, None), (0, None)])
def test_tier_thresholds_are_inclusive(units: int, tier: int | None) -> None:
    found = tier_for(units, SCORING)
    assert (found.tier if found else None) == tier


def test_below_the_lowest_tier_no_award() -> None:
    result = product_score("SZ2025-1", {f"E{i}": scores(50, 50, 50) for i in range(3)}, SCORING)
    assert result.tier is None and result.tier_max_fen == 0 and "不予资助" in result.reasons[-1].text


@pytest.mark.parametrize(
    ("experts", "code"),
    [
        ({"E1": scores(80, 80, 80), "E2": scores(80, 80, 80)}, "too_few_experts"),
        ({"E1": scores(80, 80, 80), "E2": scores(80, 80, 80), "E3": {"practicality": 80, "innovation": 80}}, "incomplete_scores"),
        ({"E1": scores(80, 80, 80), "E2": scores(80, 80, 80), "E3": {**scores(80, 80, 80), "beauty": 1}}, "incomplete_scores"),
        ({"E1": scores(80, 80, 80), "E2": scores(80, 80, 80), "E3": scores(101, 80, 80)}, "score_out_of_scale"),
        ({"E1": scores(80, 80, 80), "E2": scores(80, 80, 80), "E3": scores(-1, 80, 80)}, "score_out_of_scale"),
        ({"E1": scores(80, 80, 80), "E2": scores(80, 80, 80), "E3": {**scores(80, 80, 80), "innovation": True}}, "score_out_of_scale"),
    ],
)
def test_scores_that_cannot_be_aggregated_are_refused_in_chinese(experts: dict[str, dict[str, int]], code: str) -> None:
    with pytest.raises(ScoringError) as error:
        product_score("SZ2025-1", experts, SCORING)
    assert error.value.code == code and any("\u4e00" <= ch <= "\u9fff" for ch in error.value.message)


# --- amounts: tier maxima, 10M per applicant, the year's budget ------------------------------------


def p(no: str, uscc: str, tier: int | None) -> ScoredProduct:
    return ScoredProduct(application_no=no, applicant_uscc=uscc, tier=tier)


def test_without_a_budget_each_product_gets_its_tier_maximum() -> None:
    result = shenzhen_amounts([p("SZ-1", "A", 1), p("SZ-2", "B", 2), p("SZ-3", "C", 3), p("SZ-4", "D", None)], SCORING)
    assert [line.amount_fen for line in result.lines] == [5 * M, 3 * M, 1 * M, 0]
    assert result.total_fen == 9 * M and not result.over_budget


def test_an_applicant_gets_at_most_10m_in_a_year_across_its_products() -> None:
    result = shenzhen_amounts([p("SZ-1", "A", 1), p("SZ-2", "A", 1), p("SZ-3", "A", 2), p("SZ-4", "B", 1)], SCORING)
    mine = [line.amount_fen for line in result.lines if line.applicant_uscc == "A"]
    assert sum(mine) == 10 * M  # 5 + 5 + 3 = 13M reduced to 10M in proportion
    assert mine == [384_615_385, 384_615_384, 230_769_231]  # 10M x 5/13, x 5/13, x 3/13, largest remainder
    assert result.lines[-1].amount_fen == 5 * M  # another applicant untouched
    assert any(r.clause == "02(四)" for r in result.lines[0].reasons)


def test_the_10m_cap_counts_the_years_earlier_awards() -> None:
    result = shenzhen_amounts([p("SZ-1", "A", 1)], SCORING, already_awarded={"A": 8 * M})
    assert result.lines[0].amount_fen == 2 * M
    assert shenzhen_amounts([p("SZ-1", "A", 3)], SCORING, already_awarded={"A": 10 * M}).lines[0].amount_fen == 0


def test_over_the_budget_every_amount_is_reduced_in_the_same_proportion() -> None:
    budgeted = SCORING.model_copy(update={"budget_fen": 6 * M})
    result = shenzhen_amounts([p("SZ-1", "A", 1), p("SZ-2", "B", 2), p("SZ-3", "C", 3), p("SZ-4", "D", None)], budgeted)
    assert [line.amount_fen for line in result.lines] == [333_333_333, 200_000_000, 66_666_667, 0]
    assert result.total_fen == 6 * M and result.over_budget
    assert any("超过年度预算" in r.text for r in result.lines[0].reasons)
    assert not any("超过年度预算" in r.text for r in result.lines[3].reasons)


def test_a_later_round_is_prorated_against_what_the_budget_still_holds() -> None:
    """The reviewer's case: CNY 5M budget, three tier-1 products; the third's recording fails and the
    administrator confirms again. Round 2 used to be prorated against the whole budget (5M to the
    third product: 8.33M recorded in the year); it gets at most what round 1 left."""
    budgeted = SCORING.model_copy(update={"budget_fen": 5 * M})
    first = shenzhen_amounts([p("SZ2025-000001", "U1", 1), p("SZ2025-000002", "U2", 1), p("SZ2025-000003", "U3", 1)], budgeted)
    assert [line.amount_fen for line in first.lines] == [166_666_667, 166_666_667, 166_666_666]
    recorded = first.lines[0].amount_fen + first.lines[1].amount_fen  # the third's record_tiering failed
    second = shenzhen_amounts([p("SZ2025-000003", "U3", 1)], budgeted, budget_used_fen=recorded)
    assert second.budget_available_fen == 5 * M - recorded == 166_666_666
    assert second.lines[0].amount_fen == 166_666_666 and second.over_budget
    assert recorded + second.total_fen == 5 * M
    assert any("年度预算剩余额度" in r.text and "此前已确定" in r.text for r in second.lines[0].reasons)


def test_a_round_after_the_budget_is_spent_gets_nothing() -> None:
    budgeted = SCORING.model_copy(update={"budget_fen": 5 * M})
    spent = shenzhen_amounts([p("SZ-9", "A", 3)], budgeted, budget_used_fen=6 * M)  # budget lowered after rounds
    assert spent.budget_available_fen == 0 and spent.lines[0].amount_fen == 0 and spent.total_fen == 0
    within = shenzhen_amounts([p("SZ-9", "A", 3)], budgeted, budget_used_fen=3 * M)
    assert within.lines[0].amount_fen == 1 * M and not within.over_budget  # 1M fits in the 2M left: unchanged
    unbudgeted = shenzhen_amounts([p("SZ-9", "A", 3)], SCORING, budget_used_fen=3 * M)
    assert unbudgeted.budget_available_fen is None and unbudgeted.lines[0].amount_fen == 1 * M


@settings(deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from([1, 2, 3, None]), st.integers(min_value=0, max_value=3)),
             min_size=1, max_size=20),
    st.integers(min_value=0, max_value=30 * M),
    st.sets(st.integers(min_value=0, max_value=19)),
)
def test_rounds_never_record_more_than_the_budget_nor_an_applicants_cap(
    entries: list[tuple[str, int | None, int]], budget: int, failing: set[int]
) -> None:
    """Products reach tiering in rounds (0..3); some recordings fail and come back in the next
    round (as `_compute` sees them: only products not recorded, the year's recorded amounts)."""
    config = SCORING.model_copy(update={"budget_fen": budget})
    recorded: dict[str, tuple[str, int]] = {}
    waiting: list[ScoredProduct] = []
    for round_no in range(5):
        waiting += [p(f"SZ2025-{i:06d}", uscc, tier) for i, (uscc, tier, at) in enumerate(entries) if at == round_no]
        if not waiting:
            continue
        already: dict[str, int] = {}
        for uscc, fen in recorded.values():
            already[uscc] = already.get(uscc, 0) + fen
        result = shenzhen_amounts(waiting, config, already, budget_used_fen=sum(fen for _, fen in recorded.values()))
        fails_now = round_no < 4  # the last round records everything
        waiting = []
        for line in result.lines:
            if fails_now and int(line.application_no[-6:]) in failing:
                waiting.append(p(line.application_no, line.applicant_uscc, line.tier))
                failing.discard(int(line.application_no[-6:]))
            else:
                recorded[line.application_no] = (line.applicant_uscc, line.amount_fen)
    assert sum(fen for _, fen in recorded.values()) <= budget
    for uscc in "ABC":
        assert sum(fen for who, fen in recorded.values() if who == uscc) <= 10 * M


def test_duplicate_or_unknown_entries_are_refused() -> None:
    with pytest.raises(ScoringError):
        shenzhen_amounts([p("SZ-1", "A", 1), p("SZ-1", "A", 2)], SCORING)
    with pytest.raises(ScoringError):
        shenzhen_amounts([p("SZ-1", "A", 4)], SCORING)


@settings(deadline=None)  # a property, not a timing: shared CI cores are slow
@given(
    st.lists(st.tuples(st.sampled_from("ABCDE"), st.sampled_from([1, 2, 3, None])), min_size=1, max_size=25),
    st.one_of(st.none(), st.integers(min_value=0, max_value=60 * M)),
    st.dictionaries(st.sampled_from("ABCDE"), st.integers(min_value=0, max_value=12 * M)),
)
def test_amounts_never_exceed_a_tier_maximum_a_cap_or_the_budget(
    entries: list[tuple[str, int | None]], budget: int | None, already: dict[str, int]
) -> None:
    config = SCORING.model_copy(update={"budget_fen": budget})
    products = [p(f"SZ2025-{i:06d}", uscc, tier) for i, (uscc, tier) in enumerate(entries)]
    result = shenzhen_amounts(products, config, already_awarded=already)
    maxima = SCORING.tier_maxima()
    for line in result.lines:
        assert 0 <= line.amount_fen <= line.after_applicant_cap_fen <= (maxima[line.tier] if line.tier else 0)
    for uscc in "ABCDE":
        got = sum(line.amount_fen for line in result.lines if line.applicant_uscc == uscc)
        assert got <= max(0, 10 * M - already.get(uscc, 0))
    capped_total = sum(line.after_applicant_cap_fen for line in result.lines)
    assert result.total_fen == (capped_total if budget is None else min(budget, capped_total))


def test_the_timeline_names_the_score_that_set_the_tier() -> None:
    """Three experts scoring 90/80/70: the product's score is 81.00 (tier 2). The lifecycle's reason
    added the three criterion means (240) and the console showed it as 专家评审总分; what the
    lifecycle receives now carries the product's score, and that is what people read."""
    from services.review.console.format import reason_zh
    from services.review.scoring.service import counted_means, panel_result
    from workflows.lifecycle.shenzhen import panel_reason

    result = product_score("SZ2025-000001", {f"e{i}": scores(90, 80, 70) for i in range(3)}, SCORING)
    assert (result.score_text, result.tier) == ("81.00", 2)
    command = panel_result(result, counted_means(result, SCORING), excluded=0)
    assert (command.practicality, command.innovation, command.replicability, command.score) == (90, 80, 70, "81.00")
    assert reason_zh(panel_reason(command)) == "专家评审综合得分 81.00 分"
