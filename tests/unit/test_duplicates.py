"""Duplicate and multi-source claims (LG 三(一)4, SZ 03(四)): normalised identifiers, and flags on
every application concerned, linking to the others; never a rejection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.review.duplicates.detect import Claim, ContractRef, ProductRef, claim_from_facts, find_duplicates
from services.review.duplicates.normalize import (
    normalize_contract_no,
    normalize_invoice_no,
    normalize_product_name,
    normalize_uscc,
    product_key,
)
from tests.fixtures import events

LG, LG26, SZ, SZ26 = "LG-AI-MODEL-2025", "LG-AI-MODEL-2026", "SZ-GOVAI-SCENARIO-2025", "SZ-GOVAI-SCENARIO-2026"
SUPPLIER = events.SUPPLIER_USCC


@pytest.mark.parametrize(
    ("typed", "key"),
    [("HT-2025-018", "ht2025018"), ("ＨＴ－２０２５－０１８", "ht2025018"), ("ht 2025 018", "ht2025018"),
     ("HT—2025‐018", "ht2025018"), ("HT\u30002025\t018", "ht2025018"), ("", ""), (None, "")],
)
def test_contract_numbers_are_compared_after_normalisation(typed: str | None, key: str) -> None:
    assert normalize_contract_no(typed) == key


def test_invoice_numbers_product_names_and_usccs() -> None:
    assert normalize_invoice_no(" 2544 2000-0000 1234 5678 ") == normalize_invoice_no("２５４４２０００００００１２３４５６７８") == "25442000000012345678"
    assert normalize_product_name("《政务 智能问答·平台》") == normalize_product_name("政务智能问答平台") == "政务智能问答平台"
    assert normalize_product_name("GovQA Ｐｌａｔｆｏｒｍ-2") == "govqaplatform2"
    assert normalize_uscc(" 91440300ma5g12345l ") == "91440300MA5G12345L"
    assert product_key("政务智能问答平台", " szgov-ai-2025-017") == ("政务智能问答平台", "SZGOV-AI-2025-017")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_normalisation_is_idempotent(text: str) -> None:
    for normalize in (normalize_contract_no, normalize_invoice_no, normalize_product_name, normalize_uscc):
        assert normalize(normalize(text)) == normalize(text)


def lg(no: str, uscc: str, *, invoices: tuple[str, ...] = (), contracts: tuple[tuple[str, str | None], ...] = (),
       program: str = LG, **declarations: bool) -> Claim:
    return Claim(program=program, application_no=no, applicant_uscc=uscc, invoices=invoices,
                 contracts=tuple(ContractRef(contract_no=c, supplier_uscc=s) for c, s in contracts), declarations=declarations)


def sz(no: str, uscc: str, name: str, scenario: str = "SZGOV-AI-2025-017", program: str = SZ, **declarations: bool) -> Claim:
    return Claim(program=program, application_no=no, applicant_uscc=uscc, product=ProductRef(name=name, scenario_id=scenario),
                 declarations=declarations)


def kinds(flags: dict[str, tuple], no: str) -> list[str]:  # type: ignore[type-arg]
    return [f.kind for f in flags[no]]


def test_nothing_shared_nothing_flagged() -> None:
    flags = find_duplicates([lg("LG-1", "U1", invoices=("1",)), lg("LG-2", "U2", invoices=("2",)), sz("SZ-1", "U3", "甲")])
    assert flags == {"LG-1": (), "LG-2": (), "SZ-1": ()}


def test_one_invoice_claimed_by_two_applicants_is_flagged_on_both() -> None:
    flags = find_duplicates([
        lg("LG2025-000001", "U1", invoices=("25442000000012345678",)),
        lg("LG2025-000002", "U2", invoices=("2544 2000 0000 1234 5678",)),  # the same number, typed with spaces
        lg("LG2025-000003", "U3", invoices=("25442000000099999999",)),
    ])
    first, = flags["LG2025-000001"]
    second, = flags["LG2025-000002"]
    assert first.kind == second.kind == "same_invoice" and first.clause == "三(一)4"
    assert [o.application_no for o in first.others] == ["LG2025-000002"]
    assert [o.application_no for o in second.others] == ["LG2025-000001"]
    assert "25442000000012345678" in first.message and "LG2025-000002" in first.message
    assert flags["LG2025-000003"] == ()


def test_an_invoice_repeated_within_one_application_is_flagged_too() -> None:
    flag, = find_duplicates([lg("LG-1", "U1", invoices=("123", "１２３"))])["LG-1"]
    assert flag.kind == "same_invoice" and flag.others == () and "本申报中重复" in flag.message


def test_the_same_contract_needs_the_same_supplier() -> None:
    flags = find_duplicates([
        lg("LG-1", "U1", contracts=(("HT-2025-018", SUPPLIER),)),
        lg("LG-2", "U2", contracts=(("ｈｔ２０２５０１８", SUPPLIER.lower()),)),  # the same contract, typed differently
        lg("LG-3", "U3", contracts=(("HT-2025-018", events.RELATED_PARTY_USCC),)),  # another supplier's HT-2025-018
    ])
    assert kinds(flags, "LG-1") == kinds(flags, "LG-2") == ["same_contract"]
    assert flags["LG-3"] == ()
    assert [o.application_no for o in flags["LG-1"][0].others] == ["LG-2"]


def test_the_same_product_claimed_by_two_applicants_in_shenzhen_is_flagged_on_both() -> None:
    flags = find_duplicates([sz("SZ-1", "U1", "政务智能问答平台"), sz("SZ-2", "U2", "《政务智能问答 平台》"),
                             sz("SZ-3", "U3", "政务智能问答平台", scenario="SZGOV-AI-2025-099")])  # another scenario
    one, = flags["SZ-1"]
    two, = flags["SZ-2"]
    assert one.kind == two.kind == "same_product" and one.clause == "03(四)"
    assert "其他申报单位申报了同一产品" in one.message and one.others[0].application_no == "SZ-2"
    assert flags["SZ-3"] == ()


def test_the_same_product_in_two_batches_by_one_applicant_is_flagged_not_as_two_programs() -> None:
    flags = find_duplicates([sz("SZ2025-1", "U1", "政务智能问答平台"), sz("SZ2026-1", "U1", "政务智能问答平台", program=SZ26)])
    assert kinds(flags, "SZ2025-1") == kinds(flags, "SZ2026-1") == ["same_product"]
    assert "本单位另有申报同一产品" in flags["SZ2025-1"][0].message


def test_an_applicant_in_both_programs_is_linked_on_both_with_the_other_sides_declarations() -> None:
    flags = find_duplicates([
        lg("LG-1", "91440300MA5G12345L", other_district_funds_for_same_item=False),
        lg("LG26-1", "91440300MA5G12345L", program=LG26),
        sz("SZ-1", "91440300ma5g12345l", "政务智能问答平台", other_municipal_support_for_same_product=True),
    ])
    lg_flag, = flags["LG-1"]
    sz_flag, = flags["SZ-1"]
    assert lg_flag.kind == sz_flag.kind == "cross_program_applicant"
    assert (lg_flag.clause, sz_flag.clause) == ("三(一)4", "03(四)")
    assert [o.application_no for o in lg_flag.others] == ["SZ-1"]
    assert lg_flag.others[0].declarations == {"other_municipal_support_for_same_product": True}
    assert [o.application_no for o in sz_flag.others] == ["LG-1", "LG26-1"]
    assert sz_flag.others[0].declarations == {"other_district_funds_for_same_item": False}
    assert kinds(flags, "LG26-1") == ["cross_program_applicant"]  # two LG batches are one program


def test_claims_from_the_portals_payloads() -> None:
    lg_facts, sz_facts = events.longgang_submitted(), events.shenzhen_submitted()
    sz_facts["applicant"]["uscc"] = lg_facts["applicant"]["uscc"]
    copy = events.longgang_submitted()
    flags = find_duplicates([
        claim_from_facts(LG, "LG2025-000123", lg_facts),
        claim_from_facts(LG, "LG2025-000124", copy),
        claim_from_facts(SZ, "SZ2025-004512", sz_facts),
    ])
    assert sorted(kinds(flags, "LG2025-000123")) == ["cross_program_applicant", "same_contract", "same_invoice"]
    assert kinds(flags, "SZ2025-004512") == ["cross_program_applicant"]


def test_an_application_given_twice_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        find_duplicates([lg("LG-1", "U1"), lg("LG-1", "U1")])


@pytest.mark.parametrize("text", ["O¨", "ǅ", "ﬁ", "ß", "Ａ\u0301", "A ̈", "ᾈ"])
def test_normalisation_reaches_a_fixed_point_on_tricky_unicode(text: str) -> None:
    for normalize in (normalize_contract_no, normalize_invoice_no, normalize_product_name, normalize_uscc):
        assert normalize(normalize(text)) == normalize(text)
