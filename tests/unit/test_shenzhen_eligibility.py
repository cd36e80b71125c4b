"""Shenzhen eligibility (notice 03): each check passing on the CONTRACTS.md example with the sample
scenario catalog, and asking a person (never rejecting) on the one fact it is about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.review.duplicates.detect import claim_from_facts, find_duplicates
from services.review.reference.importer import import_reference
from services.review.rules.shenzhen_eligibility import Catalog, shenzhen_eligibility
from subsidy.programs import load_programs
from subsidy.programs.batch import ShenzhenPreChecks
from tests.fixtures import events

CONFIG = load_programs()["SZ-GOVAI-SCENARIO-2025"].pre_checks
assert isinstance(CONFIG, ShenzhenPreChecks)
SAMPLE = Path(__file__).resolve().parents[2] / "services" / "review" / "reference" / "samples" / "scenarios.csv"
IMPORTED = import_reference("scenarios", SAMPLE.read_bytes())
CATALOG = Catalog(version=IMPORTED.version, scenarios=IMPORTED.rows)


def run(facts: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    findings = shenzhen_eligibility(facts, config=CONFIG, catalog=kwargs.pop("catalog", CATALOG), **kwargs)
    return {f.rule: f for f in findings}


def needs_person(facts: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    return {rule: f.explanation for rule, f in run(facts, **kwargs).items() if f.status == "needs_person"}


def test_the_example_passes_every_check_each_citing_its_item_of_03() -> None:
    findings = run(events.shenzhen_submitted())
    assert list(findings) == ["shenzhen_entity", "business_line", "scenario_in_catalog", "in_real_use",
                              "not_government_funded", "no_multi_source_claim", "consortium_lead"]
    assert all(f.status == "passed" for f in findings.values()), {r: f.explanation for r, f in findings.items()}
    assert {r: f.clause for r, f in findings.items()} == {
        "shenzhen_entity": "03(一)", "business_line": "03(一)", "scenario_in_catalog": "03(二)", "in_real_use": "03(二)",
        "not_government_funded": "03(三)", "no_multi_source_claim": "03(四)", "consortium_lead": "03(七)"}
    scenario = findings["scenario_in_catalog"]
    assert scenario.reference_version == CATALOG.version and scenario.evidence["catalog_entry"]["title"] == "政务热线智能问答"


@pytest.mark.parametrize(
    ("city", "district", "passes"),
    [("深圳市", "南山区", True), ("深圳市", "深汕特别合作区", True), ("汕尾市", "深汕特别合作区", True),
     ("深汕特别合作区", "", True), ("广州市", "天河区", False), ("", "", False)],
)
def test_a_shenzhen_entity_shenshan_included(city: str, district: str, passes: bool) -> None:
    facts = events.shenzhen_submitted()
    facts["applicant"].update(registered_city=city, district=district)
    assert ("shenzhen_entity" not in needs_person(facts)) is passes


@pytest.mark.parametrize(("lines", "passes"), [(["corpus_governance"], True), (["application_development", "other"], True),
                                               (["hardware"], False), ([], False)])
def test_business_lines(lines: list[str], passes: bool) -> None:
    facts = events.shenzhen_submitted()
    facts["applicant"]["business_lines"] = lines
    assert ("business_line" not in needs_person(facts)) is passes


@pytest.mark.parametrize(
    ("scenario_id", "declared", "passes", "says"),
    [
        ("SZGOV-AI-2024-031", "2024-10-30", True, "2024-10-30 发布"),  # the first day of the span
        ("SZGOV-AI-2025-052", "2025-10-30", True, "2025-10-30 发布"),  # the last day
        ("szgov-ai-2025-017", "2025-03-15", True, "政务热线智能问答"),  # compared normalised
        ("SZGOV-AI-2024-007", "2024-09-20", False, "不在 2024-10-30 至 2025-10-30 期间"),  # published before
        ("SZGOV-AI-2025-017", "2025-04-01", False, "与清单（2025-03-15）不一致"),
        ("SZGOV-AI-2099-001", "2025-03-15", False, "不在场景清单中"),
        ("", None, False, "未填写"),
    ],
)
def test_the_scenario_is_in_the_catalog_published_in_the_span(scenario_id: str, declared: str | None, passes: bool, says: str) -> None:
    facts = events.shenzhen_submitted()
    facts["product"].update(scenario_id=scenario_id, scenario_published_on=declared)
    finding = run(facts)["scenario_in_catalog"]
    assert (finding.status == "passed") is passes and says in finding.explanation
    assert finding.reference_version == CATALOG.version


def test_without_a_catalog_a_person_checks_the_scenario() -> None:
    finding = run(events.shenzhen_submitted(), catalog=None)["scenario_in_catalog"]
    assert finding.status == "needs_person" and "尚未导入" in finding.explanation and finding.reference_version is None


@pytest.mark.parametrize(
    ("since", "users", "says"),
    [(None, ["f-32"], "未填写投入使用日期"), ("2025-12-01", ["f-32"], "晚于申报日期 2025-11-30"), ("2025-08-01", [], "未提供用户使用报告")],
)
def test_in_real_use(since: str | None, users: list[str], says: str) -> None:
    facts = events.shenzhen_submitted()
    facts["product"].update(in_use_since=since, user_report_file_ids=users)
    assert says in needs_person(facts)["in_real_use"]


def test_in_use_on_the_day_of_submission_passes() -> None:
    facts = events.shenzhen_submitted()
    facts["product"]["in_use_since"] = "2025-11-30"
    assert "in_real_use" not in needs_person(facts)


@pytest.mark.parametrize(("funded", "says"), [(True, "属于政府投资建设或购买服务的范围"), (None, "未声明")])
def test_government_funded_needs_a_person(funded: bool | None, says: str) -> None:
    facts = events.shenzhen_submitted()
    facts["product"]["government_funded"] = funded
    assert says in needs_person(facts)["not_government_funded"]


def test_a_declared_other_municipal_support_needs_a_person() -> None:
    facts = events.shenzhen_submitted()
    facts["declarations"]["other_municipal_support_for_same_product"] = True
    assert "市级其他同类优惠措施" in needs_person(facts)["no_multi_source_claim"]


def test_the_same_product_by_another_applicant_needs_a_person_with_the_link() -> None:
    mine, theirs = events.shenzhen_submitted(), events.shenzhen_submitted()
    theirs["applicant"]["uscc"] = events.APPLICANT_USCC
    theirs["product"]["name"] = "政务 智能问答平台"
    flags = find_duplicates([claim_from_facts("SZ-GOVAI-SCENARIO-2025", "SZ2025-004512", mine),
                             claim_from_facts("SZ-GOVAI-SCENARIO-2025", "SZ2025-004513", theirs)])
    finding = run(mine, duplicate_flags=flags["SZ2025-004512"])["no_multi_source_claim"]
    assert finding.status == "needs_person" and "其他申报单位申报了同一产品" in finding.explanation
    assert finding.evidence["flags"] == [{"kind": "same_product", "key": "政务智能问答平台|SZGOV-AI-2025-017", "others": ["SZ2025-004513"]}]


@pytest.mark.parametrize(
    ("consortium", "passes", "says"),
    [
        ({"is_consortium": True, "members": [{"uscc": events.SZ_APPLICANT_USCC, "role": "lead"}, {"uscc": events.SUPPLIER_USCC, "role": "member"}]}, True, "牵头单位"),
        ({"is_consortium": True, "lead_uscc": events.SZ_APPLICANT_USCC.lower(), "members": []}, True, "牵头单位"),
        ({"is_consortium": True, "members": [{"uscc": events.SUPPLIER_USCC, "is_lead": True}]}, False, "不是牵头单位"),
        ({"is_consortium": True, "members": [{"uscc": events.SUPPLIER_USCC}]}, False, "未注明牵头单位"),
        ({"is_consortium": False, "members": []}, True, "非联合体"),
    ],
)
def test_a_consortium_applies_through_its_lead_unit(consortium: dict[str, Any], passes: bool, says: str) -> None:
    facts = events.shenzhen_submitted()
    facts["consortium"] = consortium
    finding = run(facts)["consortium_lead"]
    assert (finding.status == "passed") is passes and says in finding.explanation


def test_no_check_ever_rejects() -> None:
    facts: dict[str, Any] = {"applicant": {}, "product": {}, "declarations": {}, "consortium": {"is_consortium": True}}
    assert {f.status for f in shenzhen_eligibility(facts, config=CONFIG, catalog=CATALOG)} == {"needs_person"}
