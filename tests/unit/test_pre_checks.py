"""Review's automatic pre-checks of a Longgang application: each rule of the guide, passing on the
CONTRACTS.md example with its materials complete, and failing on the one fact it is about."""

from __future__ import annotations

from typing import Any

import pytest

from services.review.rules.longgang import REQUIRED_MATERIALS, longgang_findings, required_materials
from tests.fixtures import events


def complete() -> dict[str, Any]:
    """The CONTRACTS.md example with every material it needs."""
    facts = events.longgang_submitted()
    facts["materials"] = [
        {"kind": kind, "file_id": f"f-{i}", "sha256": events.sha256(kind), "pages": 1}
        for i, kind in enumerate(required_materials(facts))
    ]
    return facts


def failed(facts: dict[str, Any], others: tuple[str, ...] = ()) -> dict[str, str]:
    return {f.rule: f.detail for f in longgang_findings(facts, other_applications=others) if not f.passed}


def test_the_complete_example_passes_every_check_each_citing_its_clause() -> None:
    findings = longgang_findings(complete(), other_applications=())
    assert [f.rule for f in findings] == [
        "registered_in_longgang", "branch_authorisation", "not_seriously_dishonest", "no_duplicate_application",
        "industry_code", "supplier_not_related", "model_filed_or_assessed", "materials_complete"]
    assert all(f.passed for f in findings)
    assert {f.rule: f.clause for f in findings}["industry_code"] == "三(二)1"
    assert all(f.clause for f in findings)


def test_the_example_as_contracts_md_gives_it_misses_materials() -> None:
    detail = failed(events.longgang_submitted())
    assert set(detail) == {"materials_complete"}
    assert "信用报告" in detail["materials_complete"] and "生成式人工智能服务备案证明" in detail["materials_complete"]
    assert "营业执照" not in detail["materials_complete"]  # the one it has


@pytest.mark.parametrize(("code", "passes"), [("6513", True), ("6432", True), ("6420", True), ("7511", False), ("", False), ("6", False)])
def test_industry_code_must_start_with_64_or_65(code: str, passes: bool) -> None:
    facts = complete()
    facts["applicant"]["industry_code"] = code
    assert ("industry_code" not in failed(facts)) is passes


def test_registered_and_operating_in_longgang() -> None:
    facts = complete()
    facts["applicant"]["registered_district"] = "南山区"
    assert "注册地：南山区" in failed(facts)["registered_in_longgang"]
    facts = complete()
    facts["applicant"]["operating_address"] = "深圳市南山区粤海街道"
    assert "不在龙岗区" in failed(facts)["registered_in_longgang"]


def test_a_branch_needs_its_head_office_and_the_authorisation() -> None:
    facts = complete()
    facts["applicant"].update(is_branch=True, head_office_uscc=events.HEAD_OFFICE_USCC)
    assert "总部授权证明" in failed(facts)["branch_authorisation"]
    assert "head_office_authorisation" in required_materials(facts)
    facts["materials"].append({"kind": "head_office_authorisation", "file_id": "f-h", "sha256": events.sha256("h"), "pages": 2})
    assert failed(facts) == {}
    facts["applicant"]["head_office_uscc"] = None
    assert "总部统一社会信用代码" in failed(facts)["branch_authorisation"]


def test_serious_dishonesty_and_duplicate_applications() -> None:
    facts = complete()
    facts["declarations"]["serious_dishonesty_listed"] = True
    assert set(failed(facts)) == {"not_seriously_dishonest"}
    facts = complete()
    facts["declarations"]["other_district_funds_for_same_item"] = True
    assert set(failed(facts)) == {"no_duplicate_application"}
    assert "LG2025-000777" in failed(complete(), others=("LG2025-000777",))["no_duplicate_application"]


def test_a_supplier_among_the_related_parties_the_applicant_or_its_head_office_fails() -> None:
    for supplier in (events.RELATED_PARTY_USCC, events.APPLICANT_USCC):
        facts = complete()
        facts["model_contracts"][0]["supplier_uscc"] = supplier
        assert "HT-2025-018" in failed(facts)["supplier_not_related"]
    facts = complete()
    facts["applicant"]["head_office_uscc"] = events.HEAD_OFFICE_USCC
    facts["model_contracts"][0]["supplier_uscc"] = events.HEAD_OFFICE_USCC
    assert "supplier_not_related" in failed(facts)


def test_each_model_is_cac_filed_or_assessed_at_level_3_or_above() -> None:
    facts = complete()
    facts["model_contracts"][0]["cac_filing_no"] = None
    assert "HT-2025-018" in failed(facts)["model_filed_or_assessed"]
    facts["model_contracts"][0]["security_assessment"] = {**events.security_assessment(), "level": 2}
    assert "model_filed_or_assessed" in failed(facts)
    facts["model_contracts"][0]["security_assessment"] = events.security_assessment()  # level 3
    assert "model_filed_or_assessed" not in failed(facts)
    assert "等级保护测评证明" in failed(facts)["materials_complete"]  # now its proof is the one needed
    facts["model_contracts"] = []
    assert "model_filed_or_assessed" in failed(facts)


def test_ethics_sensitive_projects_need_the_ethics_materials() -> None:
    facts = complete()
    facts["declarations"]["ethics_sensitive"] = True
    assert failed(facts)["materials_complete"] == "缺少：科技伦理相关材料"


def test_the_fixed_list_follows_the_guide_and_leaves_the_paper_form_out() -> None:
    assert "application_form" not in REQUIRED_MATERIALS
    assert set(REQUIRED_MATERIALS.values()) == {"四(一)2", "四(一)3", "四(一)4", "四(一)5", "四(一)6", "四(一)7", "四(二)1", "四(二)2"}
