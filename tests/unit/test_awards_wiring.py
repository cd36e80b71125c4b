"""Issue 11's wiring, without servers: the pre-checks read the batch's parameters, the form its texts,
notify its templates folder beside the programs, and the award confirmation's input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.notify.app import templates_dir
from services.notify.notices import TEMPLATES_DIR
from services.review.awards.service import ConfirmAwardInput
from services.review.forms.documents import FormTexts, form_id_of, render_form
from services.review.rules.longgang import DEFAULT, Parameters, explained, longgang_findings, required_materials
from subsidy.programs import load_programs
from subsidy.programs.batch import Form, LonggangPreChecks, Material, Materials
from tests.fixtures import events

LG = "LG-AI-MODEL-2025"


def complete() -> dict[str, Any]:
    facts = events.longgang_submitted()
    facts["materials"] = [{"kind": k, "file_id": f"f-{i}", "sha256": events.sha256(k), "pages": 1}
                          for i, k in enumerate(required_materials(facts))]
    return facts


def failed(facts: dict[str, Any], parameters: Parameters | None = None) -> dict[str, str]:
    return {f.rule: f.detail for f in longgang_findings(facts, other_applications=(), parameters=parameters) if not f.passed}


def test_the_2025_configuration_gives_the_same_findings_as_the_2025_constants() -> None:
    batch = load_programs()[LG]
    assert isinstance(batch.pre_checks, LonggangPreChecks)
    configured = Parameters.of(batch.pre_checks, batch.materials)
    for facts in (complete(), events.longgang_submitted()):
        assert longgang_findings(facts, other_applications=(), parameters=configured) == longgang_findings(facts, other_applications=())


def test_a_batch_with_another_district_industry_codes_and_assessment_level() -> None:
    other = Parameters(district="龙华区", industry_code_prefixes=("63",), min_assessment_level=4)
    facts = complete()
    facts["model_contracts"][0]["cac_filing_no"] = None
    facts["model_contracts"][0]["security_assessment"] = events.security_assessment()  # level 3
    found = failed(facts, other)
    assert "不在龙华区" in found["registered_in_longgang"]
    assert "须以 63 开头" in found["industry_code"]
    assert "4级及以上" in found["model_filed_or_assessed"]
    # The same facts under 2025's parameters: level 3 is enough, Longgang and 65 are right.
    assert not {"registered_in_longgang", "industry_code", "model_filed_or_assessed"} & set(failed(facts))
    assert longgang_findings(facts, other_applications=()) == longgang_findings(facts, other_applications=(), parameters=DEFAULT)


def test_the_materials_checklist_comes_from_the_batch() -> None:
    checklist = Materials(checklist=(
        Material(kind="business_license", name="营业执照", clause="四(一)2"),
        Material(kind="innovation_report", name="创新成效报告", clause="四(三)1"),
    ))
    found = failed(complete(), Parameters(materials=checklist))
    assert found["materials_complete"] == "缺少：创新成效报告"
    rows = explained(longgang_findings(complete(), other_applications=(), parameters=Parameters(materials=checklist)),
                     complete(), (), Parameters(materials=checklist), "LG-AI-MODEL-2026/rules-2025.1")
    by_rule = {r["rule"]: r for r in rows}
    assert by_rule["materials_complete"]["evidence"]["required"] == ["business_license", "innovation_report"]
    assert {r["ruleset_version"] for r in rows} == {"LG-AI-MODEL-2026/rules-2025.1"}


def test_the_form_prints_the_batch_title_watermark_and_footer() -> None:
    form_id = form_id_of("LG2026-000001", 1)
    texts = FormTexts.of(Form(title="2026年申报书", watermark="{program} {form_id}", footer="一式三份"),
                         form_id=form_id, application_no="LG2026-000001", program="LG-AI-MODEL-2026")
    pdf = render_form("LG2026-000001", 1, complete(), form_id, texts)

    def ucs2(text: str) -> bytes:
        return ("<" + "".join(f"{ord(c):04X}" for c in text) + ">").encode()

    assert ucs2("2026年申报书") in pdf and ucs2(f"LG-AI-MODEL-2026 {form_id}") in pdf and ucs2("一式三份") in pdf
    assert ucs2("2025年龙岗区调用模型开发应用扶持项目申报书") not in pdf
    assert ucs2("龙岗区调用模型扶持 " + form_id) in render_form("LG2026-000001", 1, complete(), form_id)  # no batch texts: 2025's


def test_notify_reads_templates_beside_the_programs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUBSIDY_TEMPLATES_DIR", raising=False)
    monkeypatch.delenv("SUBSIDY_PROGRAMS_DIR", raising=False)
    assert templates_dir() == TEMPLATES_DIR
    (tmp_path / "programs").mkdir()
    monkeypatch.setenv("SUBSIDY_PROGRAMS_DIR", str(tmp_path / "programs"))
    assert templates_dir() == TEMPLATES_DIR  # no templates/ beside it: the package's own
    (tmp_path / "templates").mkdir()
    assert templates_dir() == (tmp_path / "templates").resolve()
    monkeypatch.setenv("SUBSIDY_TEMPLATES_DIR", str(tmp_path / "elsewhere"))
    assert templates_dir() == tmp_path / "elsewhere"


def test_an_adjusted_award_needs_a_reason_and_nothing_is_typed_in() -> None:
    assert ConfirmAwardInput.model_validate({}).adjusted_award_fen is None
    assert ConfirmAwardInput.model_validate({"adjusted_award_fen": 5, "reason": "核减重复发票"}).adjusted_award_fen == 5
    for body in ({"adjusted_award_fen": 5}, {"adjusted_award_fen": 5, "reason": "  "}, {"award_fen": 5},
                 {"eligible_amount_fen": 1, "award_fen": 0}, {"adjusted_award_fen": -1, "reason": "x"}):
        with pytest.raises(ValidationError):
            ConfirmAwardInput.model_validate(body)
