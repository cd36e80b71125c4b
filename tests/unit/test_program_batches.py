"""A program batch is data: the 2025 batches carry their award, scoring, form, paper, notice period,
materials and pre-check parameters; a 2026 Longgang batch loads from a temporary folder
(SUBSIDY_PROGRAMS_DIR) and computes an award with no code changed; bad configuration is refused at
load with the file and the field named."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.review.rules import longgang as pre_checks
from services.review.awards.longgang import longgang_award_from_facts
from services.review.awards.shenzhen import ScoredProduct, shenzhen_amounts
from services.review.rules.materials import applicable_materials, missing_materials
from subsidy.programs import PROGRAMS_DIR, ProgramConfigError, load_programs
from subsidy.programs.batch import LonggangPreChecks, ShenzhenPreChecks, scheme_of
from tests.fixtures import events

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"
SH = ZoneInfo("Asia/Shanghai")
LG_TOML = (PROGRAMS_DIR / f"{LG}.toml").read_text(encoding="utf-8")
SZ_TOML = (PROGRAMS_DIR / f"{SZ}.toml").read_text(encoding="utf-8")


def test_the_2025_batches_carry_everything_review_reads() -> None:
    programs = load_programs()
    lg, sz = programs[LG], programs[SZ]
    assert lg.award is not None and lg.scoring is None and sz.scoring is not None and sz.award is None
    assert lg.form is not None and lg.form.title == "2025年龙岗区调用模型开发应用扶持项目申报书"
    assert lg.form.watermark.format(form_id="WF-LG2025-000123-V1") == "WF-LG2025-000123-V1"
    assert lg.paper is not None and lg.paper.copies == 2 and [w.code for w in lg.paper.windows] == [f"LG-W{n:02d}" for n in range(1, 14)]
    assert sz.paper is not None and sz.paper.copies is None and sz.paper.appointment_required
    assert [w.code for w in sz.paper.windows] == ["SZ-CIVIC-CENTER-WEST"]
    assert lg.publication is not None and sz.publication is not None
    assert (lg.publication.notice_working_days, sz.publication.notice_working_days) == (5, 7)
    assert isinstance(lg.pre_checks, LonggangPreChecks) and isinstance(sz.pre_checks, ShenzhenPreChecks)
    assert (sz.pre_checks.scenario_published_from, sz.pre_checks.scenario_published_to) == (date(2024, 10, 30), date(2025, 10, 30))
    assert "深汕特别合作区" in sz.pre_checks.also_within
    assert scheme_of(LG) == "LG-AI-MODEL" and scheme_of("LG-AI-MODEL-2026") == "LG-AI-MODEL"


def test_the_longgang_pre_check_parameters_are_the_ones_the_pre_checks_use() -> None:
    checks = load_programs()[LG].pre_checks
    assert isinstance(checks, LonggangPreChecks)
    assert checks.district == pre_checks.LONGGANG
    assert checks.industry_code_prefixes == pre_checks.SOFTWARE_INDUSTRY_PREFIXES
    assert checks.min_assessment_level == pre_checks.MIN_ASSESSMENT_LEVEL


def _variants() -> list[dict]:  # type: ignore[type-arg]
    plain = events.longgang_submitted()
    branch = events.longgang_submitted()
    branch["applicant"].update(is_branch=True, head_office_uscc=events.HEAD_OFFICE_USCC)
    ethics = events.longgang_submitted()
    ethics["declarations"]["ethics_sensitive"] = True
    assessed = events.longgang_submitted()
    assessed["model_contracts"][0].update(cac_filing_no=None, security_assessment=events.security_assessment())
    return [plain, branch, ethics, assessed]


@pytest.mark.parametrize("facts", _variants())
def test_the_longgang_checklist_is_the_one_the_pre_checks_require(facts: dict) -> None:  # type: ignore[type-arg]
    materials = load_programs()[LG].materials
    assert materials is not None
    online = [m.kind for m in applicable_materials(materials, facts) if m.online and m.required]
    assert sorted(online) == sorted(pre_checks.required_materials(facts))
    assert {m.kind for m in missing_materials(materials, facts)} == set(pre_checks.required_materials(facts)) - {"business_license"}


def test_the_shenzhen_checklist_follows_the_consortium() -> None:
    materials = load_programs()[SZ].materials
    assert materials is not None
    facts = events.shenzhen_submitted()
    assert "consortium_agreement" not in {m.kind for m in applicable_materials(materials, facts)}
    facts["consortium"] = {"is_consortium": True, "members": []}
    assert {m.kind for m in missing_materials(materials, facts)} == {"business_license", "user_report", "consortium_agreement"}


# --- a 2026 batch is configuration only ----------------------------------------------------------


def lg_2026() -> str:
    text = LG_TOML.replace('code = "LG-AI-MODEL-2025"', 'code = "LG-AI-MODEL-2026"')
    text = text.replace("first_day = 2025-12-08", "first_day = 2026-12-07").replace("last_day = 2025-12-12", "last_day = 2026-12-11")
    text = text.replace("guide_published_on = 2025-12-01", "guide_published_on = 2026-11-30")
    text = text.replace("cycle_first_day = 2024-12-01", "cycle_first_day = 2025-11-30")
    text = text.replace("cycle_last_day = 2025-11-30", "cycle_last_day = 2026-11-29")
    text = text.replace("cap_year = 2025", "cap_year = 2026")
    text = text.replace("# budget_fen = 3000000000 ", "budget_fen = 100000000 ")
    return text.replace("2025年龙岗区调用模型开发应用扶持项目申报书", "2026年龙岗区调用模型开发应用扶持项目申报书")


def test_a_2026_longgang_batch_loads_from_a_folder_and_computes_its_award(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "LG-AI-MODEL-2026.toml").write_text(lg_2026(), encoding="utf-8")
    monkeypatch.setenv("SUBSIDY_PROGRAMS_DIR", str(tmp_path))
    programs = load_programs()
    assert set(programs) == {"LG-AI-MODEL-2026"}
    batch = programs["LG-AI-MODEL-2026"]
    assert batch.form is not None and batch.form.title.startswith("2026年")
    assert batch.award is not None and batch.award.cap_year == 2026 and batch.award.budget_fen == 100_000_000
    assert batch.filing.accepts(datetime(2026, 12, 11, 23, 59, tzinfo=SH))
    assert not batch.filing.accepts(datetime(2025, 12, 9, 10, 0, tzinfo=SH))

    facts = events.longgang_submitted()
    facts["program"], facts["application_no"] = "LG-AI-MODEL-2026", "LG2026-000001"
    old = facts["model_contracts"][0]  # completed 2025-10-31: the 2025 cycle, not 2026's
    new = {**old, "contract_no": "HT-2026-001", "completed_on": "2026-11-29", "amount_fen": 80_000_000,
           "invoices": [{"invoice_no": "26442000000000000001", "amount_fen": 70_000_000, "issued_on": "2026-11-29"}],
           "payments": [{"bank_ref": "B-2026-1", "amount_fen": 80_000_000, "paid_on": "2026-11-29"}]}
    facts["model_contracts"] = [old, new]
    breakdown = longgang_award_from_facts(facts, config=batch.award)
    assert [line.included for line in breakdown.contracts] == [False, True]
    assert "2025-11-30 至 2026-11-29" in breakdown.contracts[0].reasons[0].text
    assert breakdown.eligible_total_fen == 70_000_000 and breakdown.award_fen == 21_000_000
    assert breakdown.cap_year == 2026 and breakdown.application_no == "LG2026-000001"


def test_a_third_program_of_the_shenzhen_shape_is_one_more_file(tmp_path: Path) -> None:
    text = SZ_TOML.replace(f'code = "{SZ}"', 'code = "SZ-GOVAI-SCENARIO-2026"').replace("cap_year = 2025", "cap_year = 2026")
    text = text.replace("# budget_fen = 5000000000 ", "budget_fen = 700000000 ")
    (tmp_path / "SZ-GOVAI-SCENARIO-2026.toml").write_text(text, encoding="utf-8")
    scoring = load_programs(tmp_path)["SZ-GOVAI-SCENARIO-2026"].scoring
    assert scoring is not None and scoring.budget_fen == 700_000_000
    result = shenzhen_amounts([ScoredProduct(application_no="SZ2026-1", applicant_uscc="A", tier=1),
                               ScoredProduct(application_no="SZ2026-2", applicant_uscc="B", tier=2)], scoring)
    assert [line.amount_fen for line in result.lines] == [437_500_000, 262_500_000]


# --- refused at load, naming the file and the field ----------------------------------------------


@pytest.mark.parametrize(
    ("program", "old", "new", "says"),
    [
        (LG, "\nrate_percent = 30 ", "\nrate_percent = 25 ", "[award] rate_percent = 25 but [policy] award_rate_percent = 30"),
        (LG, "cycle_last_day = 2025-11-30", "cycle_last_day = 2025-12-01", "must end before the guide's publication"),
        (LG, "cycle_first_day = 2024-12-01", "cycle_first_day = 2024-06-01", "longer than one year"),
        (LG, "cycle_first_day = 2024-12-01", "cycle_first_day = 2025-12-01", "cycle_first_day is after cycle_last_day"),
        (LG, 'rounding = "floor"', 'rounding = "bankers"', "award.rounding"),
        (LG, "enterprise_yearly_cap_fen = 200000000", "enterprise_yearly_cap_fen = -1", "award.enterprise_yearly_cap_fen"),
        (LG, "enterprise_yearly_cap_fen = 200000000", "enterprise_yearly_cap_fen = 2000000.5", "award.enterprise_yearly_cap_fen"),
        (LG, 'watermark = "{form_id}"', 'watermark = "{form_no}"', "unknown placeholder(s) ['form_no']"),
        (LG, 'code = "LG-W13"', 'code = "LG-W12"', "window codes must be unique"),
        (LG, 'industry_code_prefixes = ["64", "65"]', 'industry_codes = ["64", "65"]', "pre_checks.industry_codes: Extra inputs are not permitted"),
        (LG, 'when = "is_branch"', 'when = "is_a_branch"', "materials.checklist.2.when"),
        (LG, "[award]", "[award]\nclauses = { cycle = \"二(二)\" }", "unknown clause key(s) ['cycle']"),
        (LG, "notice_working_days = 5", "notice_working_days = 0", "publication.notice_working_days"),
        (SZ, "weight = 40", "weight = 50", "criteria weights must sum to 100"),
        (SZ, "min_score = 75", "min_score = 90", "tier 1's min_score must be above tier 2's"),
        (SZ, "max_fen = 100000000", "max_fen = 200000000", "[scoring] tier maxima"),
        (SZ, "max_fen = 300000000", "max_fen = 600000000", "tier 1's max_fen must not be below tier 2's"),
        (SZ, "scenario_published_to = 2025-10-30", "scenario_published_to = 2024-10-29", "scenario_published_from is after"),
        (SZ, "[scoring]", "[award]\nrate_percent = 30\n\n[scoring]", "award"),
    ],
)
def test_bad_configuration_is_refused_at_load_naming_file_and_field(
    tmp_path: Path, program: str, old: str, new: str, says: str
) -> None:
    text = LG_TOML if program == LG else SZ_TOML
    assert old in text, old
    (tmp_path / f"{program}.toml").write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ProgramConfigError) as error:
        load_programs(tmp_path)
    message = str(error.value)
    assert f"{program}.toml" in message and says in message, message


def test_the_cycle_dates_are_explained_for_the_operator() -> None:
    comment = LG_TOML[LG_TOML.index("# The cycle year."):LG_TOML.index("[award]")]
    assert "ASSUMED" in comment and "2024-12-01 .. 2025-11-30" in comment and "2025-12-08" in comment
    assert re.search(r"calendar year", comment)
