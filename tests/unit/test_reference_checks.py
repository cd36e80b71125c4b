"""Checks against the imported lists, each finding recording the list's version: the
serious-dishonesty list (LG 三(一)2), the CAC filing registry (LG 二(一)1), and experts' conflicts
of interest from the expert registry (SZ expert review)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.review.reference.importer import Expert, import_reference
from services.review.rules.expert_conflicts import expert_conflicts, units_of
from services.review.rules.reference_checks import cac_filing_finding, dishonesty_finding
from tests.fixtures import events

SAMPLES = Path(__file__).resolve().parents[2] / "services" / "review" / "reference" / "samples"
DISHONEST = import_reference("serious_dishonesty", (SAMPLES / "serious_dishonesty.csv").read_bytes())
FILINGS = import_reference("cac_filings", (SAMPLES / "cac_filings.csv").read_bytes())
EXPERTS = {e.expert_id: e for e in import_reference("experts", (SAMPLES / "experts.csv").read_bytes()).rows}
LISTED = "91440300MA5K000077"  # listed 2025-03-01 .. 2028-02-29 in the sample


@pytest.mark.parametrize(
    ("uscc", "on", "status"),
    [(events.APPLICANT_USCC, date(2025, 12, 9), "passed"), (LISTED, date(2025, 12, 9), "needs_person"),
     (LISTED.lower(), date(2025, 3, 1), "needs_person"), (LISTED, date(2025, 2, 28), "passed"),
     (LISTED, date(2028, 2, 29), "needs_person"), (LISTED, date(2028, 3, 1), "passed"),
     ("91440300MA5N13572G", date(2030, 1, 1), "needs_person")],  # no end date: in effect
)
def test_the_serious_dishonesty_list_in_effect_on_the_day(uscc: str, on: date, status: str) -> None:
    finding = dishonesty_finding(uscc, DISHONEST.rows, DISHONEST.version, on=on)
    assert finding.status == status and finding.clause == "三(一)2" and finding.reference_version == DISHONEST.version


def test_without_the_list_a_person_looks() -> None:
    finding = dishonesty_finding(events.APPLICANT_USCC, None, None, on=date(2025, 12, 9))
    assert finding.status == "needs_person" and "尚未导入" in finding.explanation


def test_the_example_contracts_filing_is_in_the_registry() -> None:
    finding = cac_filing_finding(events.longgang_submitted()["model_contracts"], FILINGS.rows, FILINGS.version)
    assert finding.status == "passed" and "示例大模型" in finding.explanation and finding.reference_version == FILINGS.version


def test_a_filing_number_not_in_the_registry_needs_a_person() -> None:
    contracts = events.longgang_submitted()["model_contracts"]
    contracts[0]["cac_filing_no"] = "Guangdong-Unknown-20250101"
    finding = cac_filing_finding(contracts, FILINGS.rows, FILINGS.version)
    assert finding.status == "needs_person" and "Guangdong-Unknown-20250101" in finding.explanation
    assert cac_filing_finding(contracts, None, None).status == "needs_person"


def test_a_contract_assessed_instead_of_filed_is_not_looked_up() -> None:
    contracts = events.longgang_submitted()["model_contracts"]
    contracts[0].update(cac_filing_no=None, security_assessment=events.security_assessment())
    assert cac_filing_finding(contracts, FILINGS.rows, FILINGS.version).status == "passed"


def test_experts_of_the_applicants_or_a_members_organisation_or_declared_affiliates_conflict() -> None:
    facts = events.shenzhen_submitted()
    facts["consortium"] = {"is_consortium": True, "members": [
        {"uscc": facts["applicant"]["uscc"], "name": facts["applicant"]["name"], "role": "lead"},
        {"uscc": events.SUPPLIER_USCC, "name": "北京示例大模型科技有限公司", "role": "member"}]}
    units = units_of(facts)
    assert expert_conflicts(EXPERTS["EXP-001"], units) == ()
    assert "工作单位" in expert_conflicts(EXPERTS["EXP-002"], units)[0]  # works at a consortium member
    assert "声明与" in expert_conflicts(EXPERTS["EXP-003"], units)[0]  # declared an affiliation with the applicant
    assert expert_conflicts(EXPERTS["EXP-004"], units) == ()
    nameless = Expert(expert_id="EXP-9", name="某", organisation="深圳市示例政务智能有限公司")
    assert expert_conflicts(nameless, units)  # no USCC in the registry: compared by organisation name
