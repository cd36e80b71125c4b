"""Shenzhen expert review's own logic without servers: what the lifecycle receives from a panel's
scores, the checks of an expert's scores, the inputs, the findings as stored."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from services.review.awards.shenzhen import product_score
from services.review.decisions.service import Refused
from services.review.rules.findings import Finding
from services.review.reference.importer import import_reference
from services.review.scoring.eligibility import as_stored, record_findings
from services.review.scoring.service import (
    CONTRACT_CRITERIA,
    CriterionScore,
    DeclineInput,
    PanelInput,
    ScoreInput,
    _checked_points,
    counted_means,
)
from subsidy.programs import programs
from tests.fixtures import events

SZ = "SZ-GOVAI-SCENARIO-2025"
SCORING = programs()[SZ].scoring
assert SCORING is not None


def marks(p: int, i: int, r: int) -> dict[str, int]:
    return {"practicality": p, "innovation": i, "replicability": r}


def test_the_configured_criteria_are_the_ones_the_lifecycle_records() -> None:
    assert {c.key for c in SCORING.criteria} == set(CONTRACT_CRITERIA)


def test_three_experts_each_criterion_is_their_mean_rounded_half_up() -> None:
    result = product_score("SZ2025-000001", {"e1": marks(90, 88, 86), "e2": marks(92, 85, 88), "e3": marks(89, 90, 84)}, SCORING)
    # practicality (90+92+89)/3 = 90.33 -> 90; innovation 263/3 = 87.67 -> 88; replicability 258/3 = 86
    assert counted_means(result, SCORING) == {"practicality": 90, "innovation": 88, "replicability": 86}


def test_half_a_point_rounds_up() -> None:
    result = product_score("SZ2025-000001", {"e1": marks(80, 80, 80), "e2": marks(81, 80, 80), "e3": marks(80, 80, 80),
                                             "e4": marks(81, 80, 80)}, SCORING)
    assert counted_means(result, SCORING)["practicality"] == 81  # 80.5


def test_five_experts_the_dropped_highest_and_lowest_are_left_out_of_every_criterion() -> None:
    scores = {"e1": marks(100, 100, 100), "e2": marks(80, 80, 80), "e3": marks(82, 82, 82), "e4": marks(84, 84, 84),
              "e5": marks(10, 10, 10)}
    result = product_score("SZ2025-000001", scores, SCORING)
    assert counted_means(result, SCORING) == {"practicality": 82, "innovation": 82, "replicability": 82}


def score_input(**points: int) -> ScoreInput:
    return ScoreInput(criteria={k: CriterionScore(points=v, justification="理由") for k, v in points.items()})


@pytest.mark.parametrize(("points", "says"), [
    ({"practicality": 90, "innovation": 80}, "缺少：可复制推广性"),
    ({"practicality": 90, "innovation": 80, "replicability": 70, "beauty": 99}, "含未知评分项：beauty"),
    ({"practicality": 101, "innovation": 80, "replicability": 70}, "0 至 100"),
    ({"practicality": -1, "innovation": 80, "replicability": 70}, "0 至 100"),
])
def test_an_experts_scores_must_cover_every_criterion_on_the_scale(points: dict[str, int], says: str) -> None:
    with pytest.raises(Refused) as refused:
        _checked_points(score_input(**points), SCORING)
    assert refused.value.refusal.status == 422 and says in refused.value.refusal.message


def test_complete_scores_pass() -> None:
    assert _checked_points(score_input(practicality=0, innovation=100, replicability=50), SCORING) == marks(0, 100, 50)


@pytest.mark.parametrize(("model", "data"), [
    (CriterionScore, {"points": 90, "justification": "   "}),  # a justification per criterion is required
    (CriterionScore, {"points": 90}),
    (DeclineInput, {"reason": " "}),  # declining names the conflict
    (PanelInput, {"experts": ["exp-01", "exp-01", "exp-02"]}),
    (PanelInput, {"experts": []}),
    (PanelInput, {"expert": "exp-01"}),  # the single-expert body is gone
])
def test_inputs_that_are_refused(model: Any, data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_a_finding_is_stored_with_its_clause_status_and_reference_version() -> None:
    finding = Finding(rule="scenario_in_catalog", clause="03(二)", status="needs_person", explanation="请人工核实",
                      evidence={"scenario_id": "X"}, reference_version="abc123")
    stored = as_stored(SZ, finding)
    assert stored["passed"] is False and stored["detail"] == "needs_person" and stored["clause"] == "03(二)"
    assert stored["evidence"] == {"scenario_id": "X", "reference_version": "abc123"}
    assert stored["ruleset_version"].startswith(SZ + "/")


class FakeConnection:
    """What record_findings asks of a connection: the latest imported list (none: no row), the
    application's duplicate flags (none here: 03(四) with flags is tests/unit/test_award_budget.py's),
    and the findings it stores."""

    def __init__(self, scenarios: list[dict[str, Any]] | None, version: str = "v-1"):
        self.scenarios, self.version = scenarios, version
        self.stored: list[tuple[Any, ...]] = []

    async def fetchrow(self, query: str, *args: Any) -> Any:
        assert args == ("scenarios",)
        if self.scenarios is None:
            return None
        return {"version": self.version, "rows": json.dumps(self.scenarios, ensure_ascii=False)}

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        assert "duplicate_flags" in query
        return []

    async def executemany(self, query: str, rows: list[tuple[Any, ...]]) -> None:
        self.stored += rows


def recorded(program: str = SZ) -> Any:
    facts = events.shenzhen_submitted()
    return SimpleNamespace(program=program, application_no="SZ2025-000077", version=2, facts=facts)


async def test_a_shenzhen_version_gets_notice_03s_findings_reading_the_imported_catalog() -> None:
    sample = Path(__file__).resolve().parents[2] / "services" / "review" / "reference" / "samples" / "scenarios.csv"
    imported = import_reference("scenarios", sample.read_bytes())
    conn = FakeConnection([row.model_dump(mode="json") for row in imported.rows], imported.version)
    assert await record_findings(conn, recorded())  # type: ignore[arg-type]
    by_rule = {row[2]: row for row in conn.stored}  # (no, version, rule, clause, passed, detail, explanation, evidence, ...)
    assert by_rule["scenario_in_catalog"][3] == "03(二)" and by_rule["scenario_in_catalog"][4] is True
    assert json.loads(by_rule["scenario_in_catalog"][7])["reference_version"] == imported.version
    assert all(row[1] == 2 for row in conn.stored) and len(conn.stored) == 7


async def test_without_the_reference_lists_the_scenario_needs_a_person() -> None:
    conn = FakeConnection(None)
    assert await record_findings(conn, recorded())  # type: ignore[arg-type]
    by_rule = {row[2]: row for row in conn.stored}
    assert by_rule["scenario_in_catalog"][4] is False and by_rule["scenario_in_catalog"][5] == "needs_person"


async def test_a_longgang_version_is_left_to_its_own_pre_checks() -> None:
    conn = FakeConnection(None)
    assert not await record_findings(conn, recorded("LG-AI-MODEL-2025"))  # type: ignore[arg-type]
    assert conn.stored == []
