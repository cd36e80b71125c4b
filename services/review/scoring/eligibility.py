"""Notice 03's eligibility findings (rules/shenzhen_eligibility.py) for each version of a Shenzhen
application as intake recorded it, kept in review.pre_check_findings for the formal pre-reviewer,
as Longgang's pre-checks are. Run in the transaction that stores the version (exactly once per
event). The scenario catalog is the latest imported `scenarios` list, when there is one; without it
the catalog check says `needs_person`. Duplicate flags are not read here (yet): the multi-source
check reads the applicant's declaration.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from services.review import repository
from services.review.reference.importer import Scenario
from services.review.rules.findings import Finding
from services.review.rules.shenzhen_eligibility import Catalog, shenzhen_eligibility
from subsidy.programs import programs
from subsidy.programs.batch import ShenzhenPreChecks

log = structlog.get_logger(__name__)
RULESET_VERSION = "shenzhen-eligibility-2025.1"


async def scenario_catalog(conn: asyncpg.Connection) -> Catalog | None:
    imported = await repository.latest_reference(conn, "scenarios")
    if imported is None:
        return None
    version, rows = imported
    try:
        return Catalog(version=version, scenarios=tuple(Scenario.model_validate(r) for r in rows))
    except ValueError:  # a stored list this version cannot read: the check says needs_person
        log.warning("the imported scenario catalog cannot be read", version=version)
        return None


def as_stored(program: str, finding: Finding) -> dict[str, Any]:
    """A finding as review.pre_check_findings keeps it (passed = nothing for a person to check)."""
    evidence = dict(finding.evidence)
    if finding.reference_version is not None:
        evidence["reference_version"] = finding.reference_version
    return {
        "rule": finding.rule, "clause": finding.clause, "passed": finding.status == "passed", "detail": finding.status,
        "explanation": finding.explanation, "evidence": evidence, "ruleset_version": f"{program}/{RULESET_VERSION}",
        "reference_version": finding.reference_version,  # its own column once migration 113 (awards-api) is merged
    }


async def record_findings(conn: asyncpg.Connection, event: Any) -> bool:
    """Store the findings of a SubmissionRecorded event's version; False for a program that is not
    Shenzhen-shaped (its pre-checks run elsewhere)."""
    program = programs().get(event.program)
    if program is None or not isinstance(program.pre_checks, ShenzhenPreChecks):
        return False
    catalog = await scenario_catalog(conn)
    try:
        findings = shenzhen_eligibility(event.facts, config=program.pre_checks, catalog=catalog)
    except Exception:  # a rule's defect must not hold the version (and its partition) back: no findings, logged
        log.exception("Shenzhen eligibility could not be evaluated", version=event.version)
        return False
    await repository.store_findings(conn, event.application_no, event.version, [as_stored(event.program, f) for f in findings])
    return True
