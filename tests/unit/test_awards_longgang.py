"""Longgang's award (guide 二(一), 二(二), 二(三)) and the shared money rules: the smallest of
contract, invoices and payments; the cycle's first and last day; the rounding; the enterprise's
yearly cap across two applications; pro rata to a budget whose total equals the budget to the fen."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.review.awards.longgang import longgang_award, longgang_award_from_facts, prorate_batch
from services.review.awards.money import percent_of, prorate_to_budget, remaining_cap, round_fraction, yuan
from subsidy.programs import load_programs
from subsidy.programs.batch import LonggangAward, Rounding
from tests.fixtures import events

CONFIG = load_programs()["LG-AI-MODEL-2025"].award
assert CONFIG is not None
APPLICANT = events.APPLICANT_USCC
SUPPLIER = events.SUPPLIER_USCC


def contract(no: str = "HT-2025-018", *, amount: int = 150_000_000, invoices: tuple[int, ...] | None = None,
             payments: tuple[int, ...] | None = None, completed_on: str | None = "2025-10-31",
             supplier: str | None = SUPPLIER, filing: str | None = "Guangdong-ShiLi-20240101",
             level: int | None = None, invoice_prefix: str | None = None) -> dict[str, Any]:
    invoices = (amount,) if invoices is None else invoices
    payments = (amount,) if payments is None else payments
    prefix = invoice_prefix or no
    return {
        "contract_no": no, "supplier_name": "北京示例大模型科技有限公司", "supplier_uscc": supplier,
        "model_name": "示例大模型", "cac_filing_no": filing,
        "security_assessment": None if level is None else {**events.security_assessment(), "level": level},
        "signed_on": "2025-01-15", "completed_on": completed_on, "amount_fen": amount,
        "invoices": [{"invoice_no": f"{prefix}-I{i}", "amount_fen": a, "issued_on": "2025-11-02"} for i, a in enumerate(invoices)],
        "payments": [{"bank_ref": f"{no}-P{i}", "amount_fen": a, "paid_on": "2025-11-05"} for i, a in enumerate(payments)],
    }


def award(*contracts: dict[str, Any], config: LonggangAward = CONFIG, already: int = 0, **kwargs: Any):  # type: ignore[no-untyped-def]
    return longgang_award(contracts, applicant_uscc=APPLICANT, related_party_usccs=[events.RELATED_PARTY_USCC],
                          config=config, already_awarded_fen=already, **kwargs)


# --- the 2025 configuration, as the guide says --------------------------------------------------


def test_the_2025_batch_configures_30_percent_floor_and_2m_per_enterprise() -> None:
    assert (CONFIG.rate_percent, CONFIG.rounding, CONFIG.rounding_unit_fen) == (30, Rounding.FLOOR, 1)
    assert CONFIG.enterprise_yearly_cap_fen == 200_000_000 and CONFIG.cap_year == 2025
    # the cycle: twelve months before the (assumed) publication, ending before acceptance opens 2025-12-08
    assert (CONFIG.cycle_first_day, CONFIG.cycle_last_day) == (date(2024, 12, 1), date(2025, 11, 30))
    assert CONFIG.cycle_last_day < CONFIG.guide_published_on < date(2025, 12, 8)


def test_the_contracts_md_example_gets_30_percent_of_its_contract() -> None:
    breakdown = longgang_award_from_facts(events.longgang_submitted(), config=CONFIG)
    assert breakdown.eligible_total_fen == 150_000_000
    assert breakdown.computed_fen == breakdown.award_fen == 45_000_000  # CNY 450,000
    assert not breakdown.capped and breakdown.application_no == "LG2025-000123"
    line, = breakdown.contracts
    assert line.included and {r.clause for r in line.reasons} == {"二(一)", "二(二)", "二(三)"}
    assert [r.clause for r in breakdown.summary] == ["二(三)", "二(二)", "二(二)", "二(二)"]
    assert "450,000.00 元" in breakdown.summary[-1].text


# --- 二(三) 核准制: the smallest of contract, invoices, payments ------------------------------------


@pytest.mark.parametrize(
    ("amount", "invoices", "payments", "eligible", "basis"),
    [
        (100_000_00, (60_000_00, 30_000_00), (100_000_00,), 90_000_00, "增值税发票合计"),  # invoiced less
        (100_000_00, (100_000_00,), (50_000_00, 20_000_00), 70_000_00, "付款合计"),  # paid less
        (80_000_00, (90_000_00,), (95_000_00,), 80_000_00, "合同金额"),  # the contract is the smallest
        (100_000_00, (), (100_000_00,), 0, "增值税发票合计"),  # no invoice: nothing is supported
        (100_000_00, (100_000_00, -40_000_00), (100_000_00,), 60_000_00, "增值税发票合计"),  # a red-letter invoice
    ],
)
def test_eligible_is_the_smallest_of_contract_invoices_and_payments(
    amount: int, invoices: tuple[int, ...], payments: tuple[int, ...], eligible: int, basis: str
) -> None:
    breakdown = award(contract(amount=amount, invoices=invoices, payments=payments))
    line, = breakdown.contracts
    assert line.included and line.eligible_fen == eligible
    assert (line.contract_amount_fen, line.invoiced_fen, line.paid_fen) == (amount, sum(invoices), sum(payments))
    approval = [r for r in line.reasons if r.clause == "二(三)"]
    assert approval and basis in approval[0].text and "最小值" in approval[0].text
    assert breakdown.eligible_total_fen == eligible


def test_an_invoice_listed_under_two_contracts_of_one_application_counts_once() -> None:
    first = contract("HT-1", amount=100_000_00, invoice_prefix="SHARED")
    second = contract("HT-2", amount=100_000_00, invoice_prefix="SHARED")  # the same invoice number again
    breakdown = award(first, second)
    assert [line.invoiced_fen for line in breakdown.contracts] == [100_000_00, 0]
    assert breakdown.eligible_total_fen == 100_000_00
    assert any("已计入合同 HT-1" in r.text for r in breakdown.contracts[1].reasons)


# --- 二(二): completed within the cycle year, first and last day inclusive --------------------------


@pytest.mark.parametrize(
    ("completed_on", "included"),
    [("2024-11-30", False), ("2024-12-01", True), ("2025-06-30", True), ("2025-11-30", True), ("2025-12-01", False), (None, False)],
)
def test_the_cycle_year_is_inclusive_at_both_ends(completed_on: str | None, included: bool) -> None:
    breakdown = award(contract(completed_on=completed_on))
    line, = breakdown.contracts
    assert line.included is included
    assert breakdown.award_fen == (45_000_000 if included else 0)
    if not included:
        assert line.eligible_fen == 0
        reason, = line.reasons
        assert reason.clause == "二(二)" and "周期年度（2024-12-01 至 2025-11-30）" in reason.text


# --- 二(一): a non-affiliated supplier, a filed or assessed model ----------------------------------


@pytest.mark.parametrize(
    ("supplier", "excluded_because"),
    [
        (events.RELATED_PARTY_USCC, "关联方"),
        (events.RELATED_PARTY_USCC.lower(), "关联方"),  # compared after normalisation
        (APPLICANT, "关联方"),  # the applicant itself
        (None, "无法确认为非关联方"),
    ],
)
def test_a_contract_with_an_affiliate_is_excluded(supplier: str | None, excluded_because: str) -> None:
    line, = award(contract(supplier=supplier)).contracts
    assert not line.included
    assert any(r.clause == "二(一)" and excluded_because in r.text for r in line.reasons)


def test_the_head_office_is_an_affiliate() -> None:
    line, = award(contract(supplier=events.HEAD_OFFICE_USCC), head_office_uscc=events.HEAD_OFFICE_USCC).contracts
    assert not line.included


@pytest.mark.parametrize(
    ("filing", "level", "included"),
    [("Guangdong-ShiLi-20240101", None, True), (None, 3, True), (None, 4, True), ("  ", 3, True),
     (None, 2, False), (None, None, False), ("", None, False)],
)
def test_the_model_is_cac_filed_or_assessed_at_level_3(filing: str | None, level: int | None, included: bool) -> None:
    line, = award(contract(filing=filing, level=level)).contracts
    assert line.included is included
    if not included:
        assert any(r.clause == "二(一)" and "等级保护测评" in r.text for r in line.reasons)


def test_an_excluded_contract_gives_every_reason_and_the_others_still_count() -> None:
    bad = contract("HT-BAD", completed_on="2024-01-01", supplier=events.RELATED_PARTY_USCC, filing=None, level=2)
    good = contract("HT-GOOD", amount=10_000_00)
    breakdown = award(bad, good)
    excluded, included = breakdown.contracts
    assert not excluded.included and [r.clause for r in excluded.reasons] == ["二(二)", "二(一)", "二(一)"]
    assert included.included and breakdown.eligible_total_fen == 10_000_00
    assert breakdown.award_fen == 3_000_00
    assert "1 份合同计入，1 份不计入" in breakdown.summary[0].text


# --- rounding: once, by the configured rule ------------------------------------------------------


@pytest.mark.parametrize(
    ("eligible", "rounding", "unit", "expected"),
    [
        (333, Rounding.FLOOR, 1, 99),  # 99.9 fen down to 99
        (333, Rounding.HALF_UP, 1, 100),
        (335, Rounding.HALF_UP, 1, 101),  # 100.5 fen: the half goes up
        (331, Rounding.HALF_UP, 1, 99),  # 99.3
        (123_456_78, Rounding.FLOOR, 100, 37_037_00),  # 37,037.034 yuan down to the yuan
        (123_458_35, Rounding.HALF_UP, 100, 37_038_00),  # 37,037.505 yuan: up to the yuan
    ],
)
def test_the_award_is_rounded_once_by_the_configured_rule(eligible: int, rounding: Rounding, unit: int, expected: int) -> None:
    config = CONFIG.model_copy(update={"rounding": rounding, "rounding_unit_fen": unit})
    breakdown = award(contract(amount=eligible), config=config)
    assert breakdown.eligible_total_fen == eligible
    assert breakdown.award_fen == breakdown.computed_fen == expected


def test_rounding_sums_first_then_rounds_once() -> None:
    # three contracts of 333 fen: 30% of 999 = 299.7 -> 299, not 3 x 99 = 297
    breakdown = award(*(contract(f"HT-{i}", amount=333) for i in range(3)))
    assert breakdown.award_fen == 299


def test_round_fraction_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError):
        round_fraction(-1, 3, Rounding.FLOOR)
    with pytest.raises(ValueError):
        round_fraction(1, 0, Rounding.FLOOR)
    assert percent_of(0, 30, Rounding.HALF_UP) == 0
    assert yuan(150_000_000) == "1,500,000.00 元" and yuan(-5) == "-0.05 元"


# --- 二(二): CNY 2M per enterprise per year, across its applications ------------------------------


def test_one_application_above_the_cap_is_capped_at_2m() -> None:
    breakdown = award(contract(amount=800_000_000))  # 30% = CNY 2.4M
    assert breakdown.computed_fen == 240_000_000
    assert breakdown.award_fen == 200_000_000 and breakdown.capped
    assert "受企业年度上限限制" in breakdown.summary[-1].text


def test_two_applications_of_one_enterprise_share_the_2m_cap() -> None:
    """The ledger (PostgreSQL) holds what the first was awarded; the second gets what remains."""
    first = award(contract("HT-A", amount=500_000_000))  # 30% = 1.5M
    assert first.award_fen == 150_000_000
    second = award(contract("HT-B", amount=300_000_000), already=first.award_fen)  # 30% = 0.9M
    assert second.computed_fen == 90_000_000
    assert second.remaining_cap_fen == 50_000_000 and second.award_fen == 50_000_000 and second.capped
    assert first.award_fen + second.award_fen == CONFIG.enterprise_yearly_cap_fen
    third = award(contract("HT-C", amount=100_000_00), already=first.award_fen + second.award_fen)
    assert third.award_fen == 0 and third.remaining_cap_fen == 0


@pytest.mark.parametrize(("cap", "already", "remaining"), [(200_000_000, 0, 200_000_000), (200_000_000, 199_999_999, 1),
                                                           (200_000_000, 200_000_000, 0), (200_000_000, 250_000_000, 0)])
def test_remaining_cap(cap: int, already: int, remaining: int) -> None:
    assert remaining_cap(cap, already) == remaining


@settings(deadline=None)  # a property, not a timing: shared CI cores are slow
@given(st.lists(st.integers(min_value=0, max_value=2_000_000_000), min_size=1, max_size=6))
def test_awards_made_in_turn_against_the_ledger_never_exceed_the_cap(eligible_totals: list[int]) -> None:
    ledger = 0
    for eligible in eligible_totals:
        breakdown = award(contract(amount=eligible), already=ledger)
        assert 0 <= breakdown.award_fen <= breakdown.computed_fen
        ledger += breakdown.award_fen
    assert ledger <= CONFIG.enterprise_yearly_cap_fen
    computed = sum(eligible * 30 // 100 for eligible in eligible_totals)
    assert ledger == min(computed, CONFIG.enterprise_yearly_cap_fen)


# --- 按比例核减: pro rata to the batch's budget ------------------------------------------------------


def test_prorate_reduces_in_the_same_proportion_and_hits_the_budget_to_the_fen() -> None:
    awards = {"LG2025-000001": 100_000_00, "LG2025-000002": 200_000_00, "LG2025-000003": 300_000_00}
    assert prorate_to_budget(awards, 300_000_00) == {"LG2025-000001": 50_000_00, "LG2025-000002": 100_000_00, "LG2025-000003": 150_000_00}


def test_prorate_gives_the_missing_fen_to_the_largest_remainders_then_by_application_number() -> None:
    # 10 fen over three equal awards: 3.33 each, the one missing fen goes to the first number
    assert prorate_to_budget({"LG-3": 100, "LG-1": 100, "LG-2": 100}, 10) == {"LG-3": 3, "LG-1": 4, "LG-2": 3}
    # unequal: 7 * 5 / 12 = 2.916, 7 * 4 / 12 = 2.333, 7 * 3 / 12 = 1.75 -> 2, 2, 1 + two fen to .916 and .75
    assert prorate_to_budget({"A": 5, "B": 4, "C": 3}, 7) == {"A": 3, "B": 2, "C": 2}


def test_prorate_never_raises_an_award_and_respects_caps() -> None:
    awards = {"A": 100, "B": 50}
    assert prorate_to_budget(awards, 1_000) == awards  # within the budget: unchanged
    assert prorate_to_budget(awards, 1_000, caps={"A": 60}) == {"A": 60, "B": 50}
    assert prorate_to_budget({"A": 0, "B": 0}, 0) == {"A": 0, "B": 0}
    assert prorate_to_budget({}, 100) == {}
    with pytest.raises(ValueError):
        prorate_to_budget({"A": -1}, 10)


@settings(deadline=None)  # a property, not a timing: shared CI cores are slow
@given(
    st.dictionaries(st.from_regex(r"LG2025-[0-9]{6}", fullmatch=True), st.integers(min_value=0, max_value=200_000_000),
                    min_size=1, max_size=40),
    st.integers(min_value=0, max_value=4_000_000_000),
)
def test_prorate_total_equals_the_budget_and_none_rises(awards: dict[str, int], budget: int) -> None:
    result = prorate_to_budget(awards, budget)
    assert set(result) == set(awards)
    assert all(0 <= result[k] <= awards[k] for k in awards)
    assert sum(result.values()) == min(budget, sum(awards.values()))
    total = sum(awards.values())
    if total > budget:  # the same proportion: each within one fen of its exact share
        assert all(abs(result[k] * total - awards[k] * budget) < total for k in awards)


def test_prorate_batch_applies_the_configured_budget() -> None:
    awards = {"LG2025-000001": 150_000_000, "LG2025-000002": 90_000_000}
    assert prorate_batch(awards, CONFIG) == awards  # 2025: no budget configured
    budgeted = CONFIG.model_copy(update={"budget_fen": 200_000_000})
    result = prorate_batch(awards, budgeted)
    assert sum(result.values()) == 200_000_000 and result == {"LG2025-000001": 125_000_000, "LG2025-000002": 75_000_000}


def test_an_invoice_under_an_excluded_contract_still_counts_for_the_included_one() -> None:
    excluded = contract("HT-OLD", amount=100_000_00, completed_on="2024-06-30", invoice_prefix="SHARED")
    included = contract("HT-NEW", amount=100_000_00, invoice_prefix="SHARED")
    old, new = award(excluded, included).contracts
    assert not old.included and old.invoiced_fen == 100_000_00  # shown
    assert new.included and new.invoiced_fen == new.eligible_fen == 100_000_00  # counted here
