"""Notice 03's eligibility findings (rules/shenzhen_eligibility.py) for each version of a Shenzhen
application as intake recorded it, kept in review.pre_check_findings for the formal pre-reviewer,
as Longgang's pre-checks are. Run in the transaction that stores the version (exactly once per
event), after duplicate detection. The scenario catalog is the latest imported `scenarios` list,
when there is one; without it the catalog check says `needs_person`.

03(四) (`no_multi_source_claim`) reads the applicant's declaration and the application's active
duplicate flags (review.duplicate_flags): the same product claimed by another applicant, or the
applicant in the other program, makes it `needs_person`, naming the linked applications (never a
rejection). Detection also flags the *other* applications concerned: `refresh_multi_source` re-reads
their flags and rewrites that one finding of their latest version (the others stay as they were).
"""

from __future__ import annotations

from typing import Any

import json

import asyncpg
import structlog

from services.review import repository
from services.review.reference.importer import Scenario
from services.review.rules.findings import Finding
from services.review.duplicates.detect import Flag, Link
from services.review.rules.shenzhen_eligibility import Catalog, multi_source_finding, shenzhen_eligibility
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
    flags = await duplicate_flags(conn, event.application_no)
    try:
        findings = shenzhen_eligibility(event.facts, config=program.pre_checks, catalog=catalog, duplicate_flags=flags)
    except Exception:  # a rule's defect must not hold the version (and its partition) back: no findings, logged
        log.exception("Shenzhen eligibility could not be evaluated", version=event.version)
        return False
    await repository.store_findings(conn, event.application_no, event.version, [as_stored(event.program, f) for f in findings])
    return True


async def duplicate_flags(conn: asyncpg.Connection, application_no: str) -> tuple[Flag, ...]:
    """The application's active duplicate flags as detection found them."""
    return tuple(
        Flag(kind=row["kind"], clause=row["clause"], key=row["key"], message=row["message"],
             others=tuple(Link.model_validate(o) for o in json.loads(row["others"])))
        for row in await repository.flags_of(conn, application_no)
    )


async def linked_applications(conn: asyncpg.Connection, application_no: str) -> set[str]:
    """The applications the application's active flags link it to."""
    return {o.application_no for f in await duplicate_flags(conn, application_no) for o in f.others}


async def refresh_multi_source(conn: asyncpg.Connection, application_nos: set[str]) -> int:
    """Rewrite 03(四) of each Shenzhen application's latest version from its flags now (call after
    detection, in its transaction); returns how many were rewritten."""
    done = 0
    for application_no in sorted(application_nos):
        row = await repository.latest_submission(conn, application_no)
        batch = programs().get(row["program"]) if row is not None else None
        if row is None or batch is None or not isinstance(batch.pre_checks, ShenzhenPreChecks):
            continue
        finding = multi_source_finding(json.loads(row["facts"]), config=batch.pre_checks,
                                       duplicate_flags=await duplicate_flags(conn, application_no))
        done += await repository.rewrite_finding(conn, application_no, row["version"], as_stored(row["program"], finding))
    return done
