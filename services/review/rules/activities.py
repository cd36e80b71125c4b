"""The pre-checks as the lifecycle asks for them (task queue `subsidy-review`), and the facts they
read: each version as intake recorded it (`subsidy.application.submission-recorded.v1`, kept in
`review.submissions`). The findings go back to the workflow (the contract's PreCheckFinding) and are
kept, with explanation, evidence and ruleset version, for the reviewer (`review.pre_check_findings`).

If the workflow asks before intake's event has arrived, the activity fails retryably and Temporal
asks again (RECORD_RETRY: 1 s growing to 1 min).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.review import repository
from services.review.duplicates import service as duplicates
from services.review.rules.longgang import explained, longgang_findings
from subsidy.contracts.lifecycle import ACTIVITY_RUN_PRE_CHECKS, PreCheckReport, RunPreChecks
from subsidy.contracts.platform_events import SubmissionRecorded
from subsidy.contracts.topics import SUBMISSION_RECORDED
from subsidy.messaging import handle_once

log = structlog.get_logger(__name__)
CONSUMER = "review.submissions"


async def record_submission(pool: asyncpg.Pool, event: SubmissionRecorded) -> bool:
    """Keep a version's facts (once per event); False for a redelivery."""
    return await handle_once(pool, consumer=CONSUMER, event_id=event.event_id, topic=SUBMISSION_RECORDED,
                             effect=lambda conn: _recorded(conn, event))


async def _recorded(conn: asyncpg.Connection, event: SubmissionRecorded) -> None:
    await repository.store_submission(conn, event)
    await duplicates.record_claim(conn, event)  # flags across applications, batches and programs


async def recorded_facts(conn: asyncpg.Connection, application_no: str, version: int) -> tuple[str, dict[str, Any]]:
    """(applicant USCC, facts) of a version as intake recorded it. Until intake's event has arrived
    this raises a retryable ApplicationError: Temporal runs the asking activity again."""
    row = await repository.submission(conn, application_no, version)
    if row is None:
        raise ApplicationError(f"version {version} of {application_no} has not reached review yet", type="SubmissionNotRecorded")
    return row["applicant_uscc"], json.loads(row["facts"])


class PreCheckActivities:
    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    def all(self) -> Sequence[Callable[..., Any]]:
        return (self.run_pre_checks,)

    @activity.defn(name=ACTIVITY_RUN_PRE_CHECKS)
    async def run_pre_checks(self, request: RunPreChecks) -> PreCheckReport:
        async with self._pool.acquire() as conn:
            applicant_uscc, facts = await recorded_facts(conn, request.application_no, request.version)
            others = await repository.other_applications(conn, request.program, applicant_uscc, request.application_no)
            findings = longgang_findings(facts, other_applications=others)
            await repository.store_findings(conn, request.application_no, request.version, explained(findings, facts, others))
        log.info("pre-checks run", version=request.version, failed=[f.rule for f in findings if not f.passed])
        return PreCheckReport(findings=findings)
