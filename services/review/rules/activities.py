"""The pre-checks as the lifecycle asks for them (task queue `subsidy-review`), and the facts they
read: each version as intake recorded it (`subsidy.application.submission-recorded.v1`, kept in
`review.submissions`). The findings go back to the workflow (the contract's PreCheckFinding) and are
kept, with explanation, evidence and ruleset version, for the reviewer (`review.pre_check_findings`).

If the workflow asks before intake's event has arrived (it travels through intake's outbox, Kafka and
review's consumer while the workflow moves on), the pre-checks wait for it here, one indexed read
every SUBMISSION_POLL_S for up to SUBMISSION_WAIT_S; only then does the activity fail retryably and
Temporal asks again (RECORD_RETRY: 1 s growing to 1 min). Failing at once made this race a busy
retry: in the lifecycle benchmark under load, ~3 failed attempts per Longgang application, each an
activity round trip through the Temporal server and a wait of 1, 2, 4 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.review import repository
from services.review.duplicates import service as duplicates
from services.review.reference.importer import CacFiling, DishonestyEntry
from services.review.rules.longgang import RULESET_VERSION, Parameters, explained, longgang_findings
from services.review.rules.reference_checks import cac_filing_finding, dishonesty_finding
from services.review.scoring.eligibility import linked_applications, refresh_multi_source
from services.review.scoring.eligibility import record_findings as shenzhen_findings
from subsidy.contracts.lifecycle import ACTIVITY_RUN_PRE_CHECKS, PreCheckFinding, PreCheckReport, RunPreChecks
from subsidy.contracts.platform_events import SubmissionRecorded
from subsidy.contracts.topics import SUBMISSION_RECORDED
from subsidy.failpoints import crash_if_armed
from subsidy.messaging import handle_once
from subsidy.programs import programs
from subsidy.programs.batch import LonggangPreChecks

SHANGHAI = ZoneInfo("Asia/Shanghai")

log = structlog.get_logger(__name__)
CONSUMER = "review.submissions"
SUBMISSION_WAIT_S = 20.0
SUBMISSION_POLL_S = 0.2


async def record_submission(pool: asyncpg.Pool, event: SubmissionRecorded) -> bool:
    """Keep a version's facts (once per event); False for a redelivery."""
    return await handle_once(pool, consumer=CONSUMER, event_id=event.event_id, topic=SUBMISSION_RECORDED,
                             effect=lambda conn: _recorded(conn, event))


async def _recorded(conn: asyncpg.Connection, event: SubmissionRecorded) -> None:
    await repository.store_submission(conn, event)
    linked: set[str] = set()
    try:
        async with conn.transaction():  # a savepoint: the facts are kept for the pre-checks whatever happens here
            linked = await linked_applications(conn, event.application_no)
            await duplicates.record_claim(conn, event)  # flags across applications, batches and programs
    except Exception as exc:  # noqa: BLE001 - a claim that cannot be read must not hold the pre-checks up
        log.error("duplicate detection failed for a submission", error=type(exc).__name__)
    try:
        async with conn.transaction():  # 03(四) of the Shenzhen applications linked to this one, before or now
            linked |= await linked_applications(conn, event.application_no)
            await refresh_multi_source(conn, linked - {event.application_no})
    except Exception as exc:  # noqa: BLE001 - their findings stay as they were; the flags are shown all the same
        log.error("03(四) of the linked applications not refreshed", error=type(exc).__name__)
    # Shenzhen: notice 03's findings for the pre-reviewer (no workflow asks), 03(四) with the flags just found.
    await shenzhen_findings(conn, event)


async def recorded_facts(conn: asyncpg.Connection, application_no: str, version: int) -> tuple[str, dict[str, Any]]:
    """(applicant USCC, facts) of a version as intake recorded it. Until intake's event has arrived
    this raises a retryable ApplicationError: Temporal runs the asking activity again."""
    row = await repository.submission(conn, application_no, version)
    if row is None:
        raise ApplicationError(f"version {version} of {application_no} has not reached review yet", type="SubmissionNotRecorded")
    return row["applicant_uscc"], json.loads(row["facts"])


async def wait_for_submission(pool: asyncpg.Pool, application_no: str, version: int, *, wait_s: float = SUBMISSION_WAIT_S,
                              beat: Callable[[], None] = lambda: None) -> None:
    """Until intake's event of this version has reached review, or `wait_s` has passed (then
    `recorded_facts` fails retryably as before). `beat` at every look (the activity's heartbeat)."""
    give_up_at = time.monotonic() + wait_s
    while True:
        beat()
        async with pool.acquire() as conn:
            if await repository.submission_recorded(conn, application_no, version):
                return
        if time.monotonic() + SUBMISSION_POLL_S > give_up_at:
            return
        await asyncio.sleep(SUBMISSION_POLL_S)


class PreCheckActivities:
    def __init__(self, pool: asyncpg.Pool, *, submission_wait_s: float = SUBMISSION_WAIT_S):
        self._pool = pool
        self._submission_wait_s = submission_wait_s

    def all(self) -> Sequence[Callable[..., Any]]:
        return (self.run_pre_checks,)

    @activity.defn(name=ACTIVITY_RUN_PRE_CHECKS)
    async def run_pre_checks(self, request: RunPreChecks) -> PreCheckReport:
        # Heartbeats (the workflow's heartbeat timeout, 30 s): when this process dies mid-way, the
        # checks run again elsewhere within seconds, not after the two-minute start-to-close.
        await wait_for_submission(self._pool, request.application_no, request.version, wait_s=self._submission_wait_s,
                                  beat=activity.heartbeat)
        crash_if_armed("review.in_pre_checks")  # tests: review dies with the checks in hand
        async with self._pool.acquire() as conn:
            activity.heartbeat()
            applicant_uscc, facts = await recorded_facts(conn, request.application_no, request.version)
            others = await repository.other_applications(conn, request.program, applicant_uscc, request.application_no)
            batch = programs().get(request.program)
            parameters = Parameters.of(
                batch.pre_checks if batch is not None and isinstance(batch.pre_checks, LonggangPreChecks) else None,
                batch.materials if batch is not None else None,
            )
            ruleset = f"{request.program}/{RULESET_VERSION.split('/', 1)[1]}"
            findings = longgang_findings(facts, other_applications=others, parameters=parameters)
            kept = explained(findings, facts, others, parameters, ruleset)
            # The lists an operator imported, when present: each finding names the version it read.
            listed = await reference_findings(conn, applicant_uscc, facts)
            findings = (*findings, *(f for f, _ in listed))
            kept += [row for _, row in listed]
            await repository.store_findings(conn, request.application_no, request.version, kept)
        log.info("pre-checks run", version=request.version, failed=[f.rule for f in findings if not f.passed])
        return PreCheckReport(findings=findings)


async def reference_findings(conn: asyncpg.Connection, applicant_uscc: str,
                             facts: dict[str, Any]) -> list[tuple[PreCheckFinding, dict[str, Any]]]:
    """The checks against the serious-dishonesty list (三(一)2) and the CAC filing registry (二(一)1),
    for each list an operator has imported (`subsidy reference import`): the workflow's finding, and
    the row kept for the reviewer with the list's version. None imported: no finding (the
    declarations' own checks stand)."""
    out = []
    dishonesty = await repository.latest_reference(conn, "serious_dishonesty")
    if dishonesty is not None:
        version, rows = dishonesty
        today = datetime.now(SHANGHAI).date()
        out.append(dishonesty_finding(applicant_uscc, [DishonestyEntry.model_validate(r) for r in rows], version, on=today))
    filings = await repository.latest_reference(conn, "cac_filings")
    if filings is not None:
        version, rows = filings
        out.append(cac_filing_finding(list(facts.get("model_contracts") or ()), [CacFiling.model_validate(r) for r in rows], version))
    return [
        (PreCheckFinding(rule=f.rule, clause=f.clause, passed=f.status == "passed", detail=f.explanation[:500]),
         {"rule": f.rule, "clause": f.clause, "passed": f.status == "passed", "detail": f.explanation,
          "explanation": REFERENCE_EXPLANATIONS[f.rule], "evidence": {**f.evidence, "reference_version": f.reference_version},
          "ruleset_version": f"reference:{REFERENCE_KINDS[f.rule]}@{f.reference_version}", "reference_version": f.reference_version})
        for f in out
    ]


REFERENCE_KINDS = {"not_on_dishonesty_list": "serious_dishonesty", "cac_filing_registered": "cac_filings"}
REFERENCE_EXPLANATIONS = {
    "not_on_dishonesty_list": "申报单位不得被列入严重失信主体名单（指南三(一)2），按导入的名单核对。",
    "cac_filing_registered": "所调用模型的备案号须在网信办生成式人工智能服务备案清单中（指南二(一)1），按导入的清单核对。",
}
