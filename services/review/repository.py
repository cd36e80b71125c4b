"""All of review's SQL: the read models (applications, state changes, tasks), decisions, expert
assignments, the audit chain and the pre-check findings.

Statements name the `review.` schema explicitly, so they work on the service's pool (search_path
`review,public`) and on any other connection (the `subsidy audit verify` command, tests, benches).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.review.audit.chain import GENESIS, AuditEntry, entry_hash, masked
from services.review.tasks.steps import NOTICE_OBJECTION, PUBLICATION, Step, StepSpec, phone_step, step_for
from subsidy.contracts.platform_events import ApplicationStateChanged, PhoneTaskCreated
from subsidy.text import storable

# pg_advisory_xact_lock key serializing appends to the audit chain (any constant unique to it).
AUDIT_CHAIN_LOCK = 0x5EC0_A0D1_7C4A_1000

# The fields every state-changed event has; the rest (typed fields of contract revision 2, and
# anything a newer producer adds) is kept in state_changes.fields as it came.
_BASE_FIELDS = {"event_id", "program", "application_no", "from_state", "to_state", "reason", "actor", "deadline",
                "occurred_at", "correlation_id", "version"}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# --- the read model: state changes -> applications, history, tasks ------------------------------


async def apply_state_change(conn: asyncpg.Connection, event: ApplicationStateChanged) -> None:
    """One state change's effect on the read model (call in the inbox's transaction): kept in the
    history, the application's current status moved (never backwards in time), the tasks of the
    status it left closed, and the task of the step it reached opened (once per event)."""
    extra = {k: v for k, v in event.model_dump(mode="json").items() if k not in _BASE_FIELDS and v not in (None, [], (), {})}
    await conn.execute(
        """INSERT INTO review.state_changes (event_id, program, application_no, from_status, to_status, reason, actor,
                                            occurred_at, deadline, version, fields)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb) ON CONFLICT (event_id) DO NOTHING""",
        event.event_id, event.program, event.application_no, event.from_state, event.to_state, event.reason,
        event.actor, event.occurred_at, event.deadline, event.version, _json(extra),
    )
    moved = await conn.fetchval(
        """INSERT INTO review.applications (application_no, program, status, version, deadline, status_since)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (application_no) DO UPDATE
               SET status = EXCLUDED.status, version = coalesce(EXCLUDED.version, review.applications.version),
                   deadline = EXCLUDED.deadline, status_since = EXCLUDED.status_since, updated_at = now()
               WHERE review.applications.status_since <= EXCLUDED.status_since
           RETURNING true""",
        event.application_no, event.program, event.to_state, event.version, event.deadline, event.occurred_at,
    )
    if not moved:
        return  # an older change than the one the read model holds: history only
    await conn.execute(
        """UPDATE review.tasks SET closed_at = $3, closed_by = $4, closed_to_status = $2
           WHERE application_no = $1 AND closed_at IS NULL AND opened_at <= $3
             AND opened_status IS DISTINCT FROM $2""",
        event.application_no, event.to_state, event.occurred_at, event.actor,
    )
    typed = (getattr(event, "contract_revision", 1) or 1) >= 2
    spec = step_for(event.program, event.to_state, event.reason, awaiting_step=getattr(event, "awaiting_step", None), typed=typed)
    if spec is not None:
        await _open_task(conn, event.program, event.application_no, spec, event.to_state, event.occurred_at,
                         event.deadline, event.event_id)


async def open_phone_task(conn: asyncpg.Connection, event: PhoneTaskCreated) -> None:
    """Notify could not reach the enterprise by SMS: someone phones it (one open task per application)."""
    status = await conn.fetchval("SELECT status FROM review.applications WHERE application_no = $1", event.application_no)
    await _open_task(conn, event.program, event.application_no, phone_step(event.program), status, event.created_at,
                     None, event.event_id)


async def open_publication_task(conn: asyncpg.Connection, program: str, application_no: str, opened_at: datetime) -> None:
    """The application is on its batch's public-notice list: the administrator may publish it."""
    await _open_task(conn, program, application_no, PUBLICATION, "awaiting_publication", opened_at, None,
                     f"enlist:{application_no}")


async def _open_task(
    conn: asyncpg.Connection, program: str, application_no: str, spec: StepSpec, status: str | None,
    opened_at: datetime, deadline: datetime | None, event_id: str,
) -> None:
    await conn.execute(
        """INSERT INTO review.tasks (program, application_no, step, role, opened_status, opened_at, deadline, source_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
        program, application_no, spec.step.value, spec.role.value, status, opened_at, deadline, event_id,
    )


async def application(conn: asyncpg.Connection, application_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT application_no, program, status, version, deadline, status_since FROM review.applications WHERE application_no = $1",
        application_no,
    )


async def state_changes_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT from_status, to_status, reason, actor, occurred_at, deadline, version, fields::text AS fields
           FROM review.state_changes WHERE application_no = $1 ORDER BY occurred_at, recorded_at""",
        application_no,
    )


# --- tasks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskQuery:
    programs: list[str]
    roles: list[str]
    subject: str
    actor_id: str
    program: str | None = None
    step: str | None = None
    overdue: bool | None = None
    closed: bool = False
    sort: str = "deadline"  # or "age"
    limit: int = 20
    offset: int = 0


_TASK_COLUMNS = "id, program, application_no, step, role, assignee, opened_at, deadline, closed_at, closed_by, closed_to_status"


async def list_tasks(conn: asyncpg.Connection, query: TaskQuery, now: datetime) -> tuple[int, list[asyncpg.Record]]:
    """(total, one page) of the caller's open tasks, or of the tasks the caller closed."""
    if query.closed:
        where = ["closed_by = $1", "closed_at IS NOT NULL", "program = ANY($2::text[])"]
        args: list[Any] = [query.actor_id, query.programs]
        order = "closed_at DESC, id DESC"
    else:
        where = [
            "closed_at IS NULL",
            "program = ANY($1::text[])",
            "role = ANY($2::text[])",
            "(assignee IS NULL OR assignee = $3)",
            # An expert sees the tasks of the applications assigned to them only.
            "(role <> 'expert' OR EXISTS (SELECT 1 FROM review.expert_assignments e"
            " WHERE e.application_no = t.application_no AND e.expert_subject = $3))",
        ]
        args = [query.programs, query.roles, query.subject]
        order = "deadline ASC NULLS LAST, opened_at ASC, id ASC" if query.sort == "deadline" else "opened_at ASC, id ASC"
    if query.program is not None:
        args.append(query.program)
        where.append(f"program = ${len(args)}")
    if query.step is not None:
        args.append(query.step)
        where.append(f"step = ${len(args)}")
    if query.overdue is not None:
        args.append(now)
        where.append(f"(deadline IS NOT NULL AND deadline < ${len(args)})" if query.overdue
                     else f"(deadline IS NULL OR deadline >= ${len(args)})")
    args += [query.limit, query.offset]
    rows = await conn.fetch(
        f"""SELECT {_TASK_COLUMNS}, count(*) OVER () AS total FROM review.tasks t
            WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ${len(args) - 1} OFFSET ${len(args)}""",
        *args,
    )
    total = rows[0]["total"] if rows else await _count_beyond_page(conn, where, args[:-2], query)
    return total, rows


async def _count_beyond_page(conn: asyncpg.Connection, where: list[str], args: list[Any], query: TaskQuery) -> int:
    if query.offset == 0:
        return 0
    return await conn.fetchval(f"SELECT count(*) FROM review.tasks t WHERE {' AND '.join(where)}", *args)


async def task(conn: asyncpg.Connection, task_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_TASK_COLUMNS} FROM review.tasks WHERE id = $1", task_id)


async def tasks_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_TASK_COLUMNS} FROM review.tasks WHERE application_no = $1 ORDER BY opened_at, id",
                            application_no)


async def assign_task(conn: asyncpg.Connection, task_id: int, assignee: str) -> bool:
    """Give an open task to one person; False when it is closed meanwhile."""
    return bool(await conn.fetchval(
        "UPDATE review.tasks SET assignee = $2 WHERE id = $1 AND closed_at IS NULL RETURNING true", task_id, assignee
    ))


async def close_task_by_decision(conn: asyncpg.Connection, application_no: str, step: Step, actor_id: str, to_status: str | None) -> None:
    """The person who decided closed the step's latest task (whether or not the state change has
    already arrived and closed it in the lifecycle's name)."""
    await conn.execute(
        """UPDATE review.tasks SET closed_by = $3, closed_at = coalesce(closed_at, now()),
                                   closed_to_status = coalesce(closed_to_status, $4)
           WHERE id = (SELECT id FROM review.tasks WHERE application_no = $1 AND step = $2 ORDER BY opened_at DESC, id DESC LIMIT 1)""",
        application_no, step.value, actor_id, to_status,
    )


async def insert_task_for_bench(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert of open tasks (bench/tasks_list.py): (program, application_no, step, role, opened_at, deadline, event id)."""
    await conn.copy_records_to_table(
        "tasks", schema_name="review", records=rows,
        columns=["program", "application_no", "step", "role", "opened_at", "deadline", "source_event_id"],
    )


# --- decisions and experts --------------------------------------------------------------------------


async def stored_decision(conn: asyncpg.Connection, idempotency_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT idempotency_key, program, application_no, action, actor_id, input::text AS input, answer::text AS answer
           FROM review.decisions WHERE idempotency_key = $1""",
        idempotency_key,
    )


async def insert_decision(
    conn: asyncpg.Connection, *, idempotency_key: str, program: str, application_no: str | None, action: str,
    actor_subject: str, actor_id: str, actor_role: str, input: dict[str, Any], outcome_status: str | None,
    answer: dict[str, Any],
) -> bool:
    """Record an accepted decision; False when this key was recorded already (a concurrent repeat).
    `input` is an attempt's body, masked when the attempt was made (decisions.service.Attempt), or
    the platform's own figures."""
    return bool(await conn.fetchval(
        """INSERT INTO review.decisions (idempotency_key, program, application_no, action, actor_subject, actor_id,
                                         actor_role, input, outcome_status, answer)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::jsonb)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING true""",
        idempotency_key, program, application_no, action, actor_subject, actor_id, actor_role, _json(input),
        outcome_status, _json(answer),
    ))


async def decisions_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT action, actor_subject, actor_id, actor_role, input::text AS input, outcome_status, decided_at
           FROM review.decisions WHERE application_no = $1 ORDER BY decided_at""",
        application_no,
    )


async def assign_expert(conn: asyncpg.Connection, program: str, application_no: str, expert_subject: str, assigned_by: str) -> bool:
    return bool(await conn.fetchval(
        """INSERT INTO review.expert_assignments (program, application_no, expert_subject, assigned_by)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
        program, application_no, expert_subject, assigned_by,
    ))


async def is_assigned_expert(conn: asyncpg.Connection, application_no: str, expert_subject: str) -> bool:
    return bool(await conn.fetchval(
        # An expert who declined (a declared conflict) no longer sees the application.
        "SELECT true FROM review.expert_assignments WHERE application_no = $1 AND expert_subject = $2 AND declined_at IS NULL",
        application_no, expert_subject,
    ))


async def experts_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT expert_subject, assigned_by, assigned_at, declined_at, decline_reason FROM review.expert_assignments
           WHERE application_no = $1 ORDER BY assigned_at""",
        application_no,
    )


# --- the audit chain -----------------------------------------------------------------------------


async def append_audit(conn: asyncpg.Connection, entry: AuditEntry) -> int:
    """Append one row to the chain in the caller's transaction; returns its seq.

    The advisory lock (released at commit or rollback) serializes appenders: each reads the last
    hash, computes its own and inserts before the next one reads. The entry is masked first
    (`chain.masked`): the hash covers the row as stored, so it verifies."""
    if not conn.is_in_transaction():
        raise RuntimeError("append_audit must run inside the transaction that records what it audits")
    entry = storable_entry(masked(entry))
    await conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_CHAIN_LOCK)
    prev = await conn.fetchval("SELECT hash FROM review.audit_chain ORDER BY seq DESC LIMIT 1") or GENESIS
    seq = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('review.audit_chain', 'seq'))")
    await conn.execute(
        """INSERT INTO review.audit_chain (seq, occurred_at, subject, role, action, program, application_no, input,
                                           outcome, reason, request_id, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13)""",
        seq, entry.occurred_at, entry.subject, entry.role, entry.action, entry.program, entry.application_no,
        _json(entry.input), entry.outcome, entry.reason, entry.request_id, bytes(prev), entry_hash(bytes(prev), seq, entry),
    )
    return seq


def storable_entry(entry: AuditEntry) -> AuditEntry:
    """`entry` with NUL and lone surrogates replaced by U+FFFD in its texts (subsidy/text.py): a
    refused request that carried them is audited, as near as PostgreSQL can store it, rather than
    the audit failing with it."""
    texts = {name: storable(getattr(entry, name)) for name in
             ("subject", "role", "action", "program", "application_no", "input", "reason", "request_id")}
    return replace(entry, **texts)


_AUDIT_COLUMNS = "seq, occurred_at, subject, role, action, program, application_no, input::text AS input, outcome, reason, request_id"


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        occurred_at=row["occurred_at"], subject=row["subject"], role=row["role"], action=row["action"],
        program=row["program"], application_no=row["application_no"], input=json.loads(row["input"]),
        outcome=row["outcome"], reason=row["reason"], request_id=row["request_id"],
    )


async def audit_rows_after(conn: asyncpg.Connection, after_seq: int, limit: int) -> list[tuple[int, bytes, bytes, AuditEntry]]:
    rows = await conn.fetch(
        f"SELECT {_AUDIT_COLUMNS}, prev_hash, hash FROM review.audit_chain WHERE seq > $1 ORDER BY seq LIMIT $2",
        after_seq, limit,
    )
    return [(r["seq"], bytes(r["prev_hash"]), bytes(r["hash"]), _entry(r)) for r in rows]


@dataclass(frozen=True)
class AuditQuery:
    programs: list[str]
    application_no: str | None = None
    subject: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


async def list_audit(conn: asyncpg.Connection, query: AuditQuery) -> tuple[int, list[asyncpg.Record]]:
    # Attempts on applications nobody knows have no program: every auditor sees them.
    where, args = ["(program = ANY($1::text[]) OR program IS NULL)"], [query.programs]
    for column, op, value in (
        ("application_no", "=", query.application_no), ("subject", "=", query.subject), ("action", "=", query.action),
        ("occurred_at", ">=", query.since), ("occurred_at", "<", query.until),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} {op} ${len(args)}")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM review.audit_chain WHERE {clause}", *args)
    rows = await conn.fetch(
        f"""SELECT {_AUDIT_COLUMNS}, encode(hash, 'hex') AS hash FROM review.audit_chain WHERE {clause}
            ORDER BY seq DESC LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}""",
        *args, query.limit, query.offset,
    )
    return total, rows


async def refused_attempts_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_AUDIT_COLUMNS} FROM review.audit_chain WHERE application_no = $1 AND outcome = 'refused' ORDER BY seq",
        application_no,
    )


# --- pre-check findings -----------------------------------------------------------------------------


async def store_findings(conn: asyncpg.Connection, application_no: str, version: int, findings: list[dict[str, Any]]) -> None:
    """Keep a version's findings as the reviewer reads them; a re-run replaces them."""
    await conn.executemany(
        """INSERT INTO review.pre_check_findings (application_no, version, rule, clause, passed, detail, explanation,
                                                  evidence, ruleset_version, position, reference_version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
           ON CONFLICT (application_no, version, rule) DO UPDATE SET
               clause = EXCLUDED.clause, passed = EXCLUDED.passed, detail = EXCLUDED.detail,
               explanation = EXCLUDED.explanation, evidence = EXCLUDED.evidence,
               ruleset_version = EXCLUDED.ruleset_version, position = EXCLUDED.position,
               reference_version = EXCLUDED.reference_version, checked_at = now()""",
        [
            (application_no, version, f["rule"], f["clause"], f["passed"], f["detail"], f["explanation"],
             _json(f["evidence"]), f["ruleset_version"], position, f.get("reference_version"))
            for position, f in enumerate(findings)
        ],
    )


async def findings_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT version, rule, clause, passed, detail, explanation, evidence::text AS evidence, ruleset_version,
                  reference_version, checked_at
           FROM review.pre_check_findings WHERE application_no = $1 ORDER BY version DESC, position""",
        application_no,
    )


# --- what each version says (review.submissions, from intake's submission-recorded events) ---------


async def versions_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT version, submitted_at, recorded_at, coalesce(facts -> 'materials', '[]'::jsonb)::text AS materials
           FROM review.submissions WHERE application_no = $1 ORDER BY version""",
        application_no,
    )


async def store_submission(conn: asyncpg.Connection, event: Any) -> None:
    """Keep a version's facts as intake recorded them (a SubmissionRecorded event; once per version)."""
    await conn.execute(
        """INSERT INTO review.submissions (application_no, version, program, applicant_uscc, submitted_at, facts)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb)
           ON CONFLICT (application_no, version) DO NOTHING""",
        event.application_no, event.version, event.program, event.applicant_uscc, event.submitted_at,
        json.dumps(event.facts, ensure_ascii=False),
    )


async def submission(conn: asyncpg.Connection, application_no: str, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT applicant_uscc, facts::text AS facts FROM review.submissions WHERE application_no = $1 AND version = $2",
        application_no, version,
    )


async def submission_recorded(conn: asyncpg.Connection, application_no: str, version: int) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM review.submissions WHERE application_no = $1 AND version = $2)", application_no, version))


async def other_applications(conn: asyncpg.Connection, program: str, applicant_uscc: str, application_no: str) -> list[str]:
    """The same enterprise's other applications to the program (duplicate claims)."""
    rows = await conn.fetch(
        """SELECT DISTINCT application_no FROM review.submissions
           WHERE program = $1 AND applicant_uscc = $2 AND application_no <> $3""",
        program, applicant_uscc, application_no,
    )
    return [r["application_no"] for r in rows]


# --- watermarked forms and public notices -------------------------------------------------------------


async def store_form(conn: asyncpg.Connection, form_id: str, program: str, application_no: str, version: int,
                     sha256: str, pdf: bytes) -> str:
    """Keep an issued form once; returns the stored hash (the first issue's, if issued before)."""
    return await conn.fetchval(
        """INSERT INTO review.forms (form_id, program, application_no, version, sha256, pdf)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (form_id) DO UPDATE SET form_id = EXCLUDED.form_id
           RETURNING sha256""",
        form_id, program, application_no, version, sha256, pdf,
    )


async def form(conn: asyncpg.Connection, form_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT program, pdf, sha256 FROM review.forms WHERE form_id = $1", form_id)


async def store_notice(conn: asyncpg.Connection, program: str, notice_id: str, published_at: datetime, published_by: str,
                       entries: Any) -> bool:
    """Keep a published public-notice list and its entries; False when this notice was stored before."""
    inserted = await conn.fetchval(
        """INSERT INTO review.publication_notices (notice_id, program, published_at, published_by, entries, total_award_fen)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (notice_id) DO NOTHING RETURNING true""",
        notice_id, program, published_at, published_by, len(entries), sum(e.award_fen for e in entries),
    )
    if not inserted:
        return False
    await conn.executemany(
        "INSERT INTO review.publication_entries (notice_id, application_no, award_fen, tier) VALUES ($1, $2, $3, $4)",
        [(notice_id, e.application_no, e.award_fen, e.tier) for e in entries],
    )
    return True


# --- the console's dashboard (services/review/api/dashboard.py) ---------------------------------


async def program_dashboard(conn: asyncpg.Connection, program: str, *, now: datetime, today_end: datetime,
                            week_end: datetime) -> dict[str, Any]:
    """A program at a glance: applications by status; open tasks by step with overdue ones and
    deadlines before the end of today / of this week (Asia/Shanghai, computed by the caller); the
    awards of applications on or past the list for public notice (the last award_fen recorded)."""
    statuses = await conn.fetch(
        "SELECT status, count(*) AS n FROM review.applications WHERE program = $1 GROUP BY status ORDER BY status", program)
    steps = await conn.fetch(
        """SELECT step, count(*) AS open,
                  count(*) FILTER (WHERE deadline < $2) AS overdue,
                  count(*) FILTER (WHERE deadline >= $2 AND deadline < $3) AS due_today,
                  count(*) FILTER (WHERE deadline >= $2 AND deadline < $4) AS due_this_week
           FROM review.tasks WHERE program = $1 AND closed_at IS NULL GROUP BY step ORDER BY step""",
        program, now, today_end, week_end)
    awards = await conn.fetchrow(
        """SELECT count(*) AS n, coalesce(sum(award_fen), 0)::bigint AS total FROM (
               SELECT DISTINCT ON (s.application_no) (s.fields->>'award_fen')::bigint AS award_fen
               FROM review.state_changes s JOIN review.applications a ON a.application_no = s.application_no
               WHERE s.program = $1 AND a.status IN ('awaiting_publication', 'published') AND s.fields ? 'award_fen'
               ORDER BY s.application_no, s.occurred_at DESC) last_award
           WHERE award_fen IS NOT NULL""",
        program)
    return {
        "applications_by_status": {r["status"]: r["n"] for r in statuses},
        "tasks_by_step": {r["step"]: {"open": r["open"], "overdue": r["overdue"], "due_today": r["due_today"],
                                      "due_this_week": r["due_this_week"]} for r in steps},
        "awards_count": awards["n"],
        "awards_total_fen": awards["total"],
    }


# --- Shenzhen experts, scores and tiers (services/review/scoring/; migration 120) -------------------

# pg_advisory_xact_lock key serializing Shenzhen tiering confirmations (the yearly cap per applicant).
TIER_AMOUNTS_LOCK = 0x5EC0_A0D1_7C4A_1200


# === awards-api (issue 11): Longgang awards and the yearly cap ledger, duplicate claims, reference lists ===
# (one delimited section for the awards-api helper's tables, migrations 110-112)


async def store_award_computation(
    conn: asyncpg.Connection, *, application_no: str, version: int, program: str, applicant_uscc: str, cap_year: int,
    breakdown: dict[str, Any], eligible_total_fen: int, computed_fen: int, award_fen: int,
) -> None:
    """Keep a version's computed award; a re-computation replaces it while nobody has confirmed it."""
    await conn.execute(
        """INSERT INTO review.award_computations (application_no, version, program, applicant_uscc, cap_year, breakdown,
                                                  eligible_total_fen, computed_fen, award_fen)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
           ON CONFLICT (application_no, version) DO UPDATE SET
               breakdown = EXCLUDED.breakdown, eligible_total_fen = EXCLUDED.eligible_total_fen,
               computed_fen = EXCLUDED.computed_fen, award_fen = EXCLUDED.award_fen, cap_year = EXCLUDED.cap_year,
               computed_at = now()
           WHERE review.award_computations.status = 'computed'""",
        application_no, version, program, applicant_uscc, cap_year, _json(breakdown), eligible_total_fen, computed_fen, award_fen,
    )


_AWARD_COLUMNS = """application_no, version, program, applicant_uscc, cap_year, breakdown::text AS breakdown, eligible_total_fen,
    computed_fen, award_fen, status, confirmed_fen, adjustment_reason, decided_by, decided_at, computed_at"""


async def award_computation(conn: asyncpg.Connection, application_no: str) -> asyncpg.Record | None:
    """The latest version's computed award."""
    return await conn.fetchrow(
        f"SELECT {_AWARD_COLUMNS} FROM review.award_computations WHERE application_no = $1 ORDER BY version DESC LIMIT 1",
        application_no,
    )


async def lock_enterprise_year(conn: asyncpg.Connection, uscc: str, cap_year: int, cap_fen: int, application_no: str) -> int:
    """Lock the enterprise's (USCC, year) ledger row for this transaction and return what its other
    applications already hold. A second confirmation of the same enterprise waits here until the first
    commits (or rolls back), so two confirmations at once never both see the whole cap."""
    await conn.execute(
        "INSERT INTO review.award_ledger (uscc, cap_year, cap_fen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        uscc, cap_year, cap_fen,
    )
    await conn.execute("SELECT 1 FROM review.award_ledger WHERE uscc = $1 AND cap_year = $2 FOR UPDATE", uscc, cap_year)
    return await reserved_for_others(conn, uscc, cap_year, application_no)


async def reserve_award(conn: asyncpg.Connection, *, application_no: str, uscc: str, cap_year: int, program: str,
                        amount_fen: int, idempotency_key: str) -> None:
    """The application's share of its enterprise's yearly cap (call holding lock_enterprise_year)."""
    await conn.execute(
        """INSERT INTO review.award_reservations (application_no, uscc, cap_year, program, amount_fen, idempotency_key)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (application_no) DO UPDATE SET amount_fen = EXCLUDED.amount_fen,
               idempotency_key = EXCLUDED.idempotency_key, reserved_at = now()""",
        application_no, uscc, cap_year, program, amount_fen, idempotency_key,
    )


async def latest_version(conn: asyncpg.Connection, application_no: str) -> int | None:
    return await conn.fetchval("SELECT max(version) FROM review.submissions WHERE application_no = $1", application_no)


async def reserved_for_others(conn: asyncpg.Connection, uscc: str, cap_year: int, application_no: str) -> int:
    """What the enterprise's other applications hold of its yearly cap (no lock: for display)."""
    return int(await conn.fetchval(
        """SELECT coalesce(sum(amount_fen), 0) FROM review.award_reservations
           WHERE uscc = $1 AND cap_year = $2 AND application_no <> $3""",
        uscc, cap_year, application_no,
    ))


async def decide_award(conn: asyncpg.Connection, application_no: str, version: int, *, status: str, confirmed_fen: int,
                       reason: str | None, decided_by: str) -> None:
    await conn.execute(
        """UPDATE review.award_computations SET status = $3, confirmed_fen = $4, adjustment_reason = $5, decided_by = $6,
                  decided_at = now() WHERE application_no = $1 AND version = $2""",
        application_no, version, status, confirmed_fen, reason, decided_by,
    )


async def batch_awards(conn: asyncpg.Connection, program: str) -> list[asyncpg.Record]:
    """Every application's latest computed award of a batch, with its confirmation if any."""
    return await conn.fetch(
        f"""SELECT DISTINCT ON (application_no) {_AWARD_COLUMNS} FROM review.award_computations
            WHERE program = $1 ORDER BY application_no, version DESC""",
        program,
    )


async def enterprise_reservations(conn: asyncpg.Connection, uscc: str, cap_year: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT application_no, program, amount_fen, reserved_at FROM review.award_reservations
           WHERE uscc = $1 AND cap_year = $2 ORDER BY reserved_at, application_no""",
        uscc, cap_year,
    )


# --- duplicate claims ---------------------------------------------------------------------------------

# pg_advisory_xact_lock key serializing duplicate detection (one detection sees every committed claim).
DUPLICATES_LOCK = 0x5EC0_A0D1_D0B1_1000


async def store_claim(conn: asyncpg.Connection, application_no: str, program: str, version: int, claim: dict[str, Any]) -> None:
    """An application's claim as its latest version says it (an older version arriving late changes nothing)."""
    await conn.execute(
        """INSERT INTO review.duplicate_claims (application_no, program, version, claim) VALUES ($1, $2, $3, $4::jsonb)
           ON CONFLICT (application_no) DO UPDATE SET version = EXCLUDED.version, claim = EXCLUDED.claim, recorded_at = now()
           WHERE review.duplicate_claims.version <= EXCLUDED.version""",
        application_no, program, version, _json(claim),
    )


async def all_claims(conn: asyncpg.Connection) -> list[str]:
    """Every stored claim, as its JSON text (detection holds DUPLICATES_LOCK)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", DUPLICATES_LOCK)
    rows = await conn.fetch("SELECT claim::text AS claim FROM review.duplicate_claims ORDER BY application_no")
    return [r["claim"] for r in rows]


async def replace_flags(conn: asyncpg.Connection, flags: dict[str, list[dict[str, Any]]]) -> None:
    """The flags detection found now, per application: new ones inserted, changed ones updated (a
    changed set of other applications asks the reviewer again), vanished ones made inactive."""
    for application_no, found in flags.items():
        keys = [(f["kind"], f["key"]) for f in found]
        for f in found:
            await conn.execute(
                """INSERT INTO review.duplicate_flags (application_no, kind, key, clause, others, message)
                   VALUES ($1, $2, $3, $4, $5::jsonb, $6)
                   ON CONFLICT (application_no, kind, key) DO UPDATE SET
                       clause = EXCLUDED.clause, message = EXCLUDED.message, others = EXCLUDED.others, active = true,
                       updated_at = now(),
                       acknowledged_by = CASE WHEN review.duplicate_flags.others = EXCLUDED.others
                                              THEN review.duplicate_flags.acknowledged_by END,
                       acknowledged_at = CASE WHEN review.duplicate_flags.others = EXCLUDED.others
                                              THEN review.duplicate_flags.acknowledged_at END
                   WHERE review.duplicate_flags.others IS DISTINCT FROM EXCLUDED.others
                      OR NOT review.duplicate_flags.active OR review.duplicate_flags.message <> EXCLUDED.message""",
                application_no, f["kind"], f["key"], f["clause"], _json(f["others"]), f["message"],
            )
        await conn.execute(
            """UPDATE review.duplicate_flags SET active = false, updated_at = now()
               WHERE application_no = $1 AND active
                 AND (kind, key) NOT IN (SELECT k, v FROM unnest($2::text[], $3::text[]) AS t(k, v))""",
            application_no, [k for k, _ in keys], [v for _, v in keys],
        )


async def flagged_applications(conn: asyncpg.Connection) -> set[str]:
    return {r["application_no"] for r in await conn.fetch("SELECT DISTINCT application_no FROM review.duplicate_flags WHERE active")}


async def flags_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, kind, key, clause, others::text AS others, message, acknowledged_by, acknowledged_at, note, flagged_at
           FROM review.duplicate_flags WHERE application_no = $1 AND active ORDER BY id""",
        application_no,
    )


async def acknowledge_flag(conn: asyncpg.Connection, application_no: str, flag_id: int, actor_id: str, note: str | None) -> str | None:
    """Mark a flag acknowledged: 'acknowledged', 'already' (kept as first acknowledged), or None (no such flag)."""
    row = await conn.fetchrow(
        "SELECT acknowledged_by FROM review.duplicate_flags WHERE id = $1 AND application_no = $2 AND active FOR UPDATE",
        flag_id, application_no,
    )
    if row is None:
        return None
    if row["acknowledged_by"] is not None:
        return "already"
    await conn.execute(
        "UPDATE review.duplicate_flags SET acknowledged_by = $2, acknowledged_at = now(), note = $3 WHERE id = $1",
        flag_id, actor_id, note,
    )
    return "acknowledged"


# --- reference lists ------------------------------------------------------------------------------------


async def store_reference(conn: asyncpg.Connection, kind: str, version: str, rows: list[dict[str, Any]], imported_by: str) -> int:
    """Keep an import (the latest of a kind is in effect); returns its sequence number."""
    return await conn.fetchval(
        """INSERT INTO review.reference_lists (kind, version, rows, row_count, imported_by)
           VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING seq""",
        kind, version, _json(rows), len(rows), imported_by,
    )


async def latest_reference(conn: asyncpg.Connection, kind: str) -> tuple[str, list[dict[str, Any]]] | None:
    """(version, rows) of the list of `kind` in effect, or None when none was imported."""
    row = await conn.fetchrow(
        "SELECT version, rows::text AS rows FROM review.reference_lists WHERE kind = $1 ORDER BY seq DESC LIMIT 1", kind,
    )
    return None if row is None else (row["version"], json.loads(row["rows"]))


async def latest_submission(conn: asyncpg.Connection, application_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT version, program, applicant_uscc, facts::text AS facts FROM review.submissions
           WHERE application_no = $1 ORDER BY version DESC LIMIT 1""",
        application_no,
    )


async def replace_expert_registry(conn: asyncpg.Connection, experts: list[dict[str, Any]], version: str) -> int:
    """The registry becomes exactly `experts` (one import replaces the previous one)."""
    async with conn.transaction():
        await conn.execute("DELETE FROM review.expert_registry")
        await conn.executemany(
            """INSERT INTO review.expert_registry (expert_id, name, organisation, organisation_uscc, fields, affiliations, source_version)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)""",
            [(e["expert_id"], e["name"], e["organisation"], e.get("organisation_uscc"), _json(list(e.get("fields") or ())),
              _json(list(e.get("affiliations") or ())), version) for e in experts],
        )
    return len(experts)


async def registered_expert(conn: asyncpg.Connection, expert_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT expert_id, name, organisation, organisation_uscc, fields::text AS fields, affiliations::text AS affiliations,
                  source_version FROM review.expert_registry WHERE expert_id = $1""",
        expert_id,
    )


# --- console: the expert registry a panel is chosen from ------------------------------------------


async def registered_experts(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT expert_id, name, organisation, fields::text AS fields FROM review.expert_registry ORDER BY expert_id""")
    return [{"expert_id": r["expert_id"], "name": r["name"], "organisation": r["organisation"],
             "fields": list(json.loads(r["fields"]))} for r in rows]


async def panel_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    """Every expert assigned to the application, declined or not, with whether they scored."""
    return await conn.fetch(
        """SELECT a.expert_subject, a.assigned_by, a.assigned_at, a.declined_at, a.decline_reason,
                  s.submitted_at AS scored_at
           FROM review.expert_assignments a
           LEFT JOIN review.expert_scores s ON s.application_no = a.application_no AND s.expert_subject = a.expert_subject
           WHERE a.application_no = $1 ORDER BY a.assigned_at, a.expert_subject""",
        application_no,
    )


async def active_assignment(conn: asyncpg.Connection, application_no: str, expert_subject: str) -> bool:
    return bool(await conn.fetchval(
        """SELECT true FROM review.expert_assignments
           WHERE application_no = $1 AND expert_subject = $2 AND declined_at IS NULL""",
        application_no, expert_subject,
    ))


async def open_expert_task(conn: asyncpg.Connection, program: str, application_no: str, expert_subject: str,
                           opened_at: datetime, source: str) -> None:
    """The expert's own expert_scoring task (assignee = the expert)."""
    await conn.execute(
        """INSERT INTO review.tasks (program, application_no, step, role, assignee, opened_status, opened_at, source_event_id)
           VALUES ($1, $2, 'expert_scoring', 'expert', $3, 'expert_scoring', $4, $5) ON CONFLICT DO NOTHING""",
        program, application_no, expert_subject, opened_at, source,
    )


async def open_panel_task(conn: asyncpg.Connection, program: str, application_no: str, opened_at: datetime, source: str) -> None:
    """The administrator's expert_scoring task: compose the panel, or replace an expert who declined."""
    await conn.execute(
        """INSERT INTO review.tasks (program, application_no, step, role, opened_status, opened_at, source_event_id)
           VALUES ($1, $2, 'expert_scoring', 'program_admin', 'expert_scoring', $3, $4) ON CONFLICT DO NOTHING""",
        program, application_no, opened_at, source,
    )


async def close_expert_scoring_task(conn: asyncpg.Connection, application_no: str, *, role: str, assignee: str | None,
                                    closed_by: str) -> None:
    """Close the open expert_scoring task of `role` (an expert's: theirs; the administrator's: any)."""
    await conn.execute(
        """UPDATE review.tasks SET closed_at = now(), closed_by = $4
           WHERE application_no = $1 AND step = 'expert_scoring' AND closed_at IS NULL AND role = $2
             AND ($3::text IS NULL OR assignee = $3)""",
        application_no, role, assignee, closed_by,
    )


async def decline_assignment(conn: asyncpg.Connection, application_no: str, expert_subject: str, reason: str) -> bool:
    """Mark an active, not yet scored assignment declined; False if there is none."""
    return bool(await conn.fetchval(
        """UPDATE review.expert_assignments SET declined_at = now(), decline_reason = $3
           WHERE application_no = $1 AND expert_subject = $2 AND declined_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM review.expert_scores s WHERE s.application_no = $1 AND s.expert_subject = $2)
           RETURNING true""",
        application_no, expert_subject, reason,
    ))


async def record_conflict(conn: asyncpg.Connection, program: str, application_no: str, expert_subject: str, source: str,
                          reasons: list[str], recorded_by: str) -> None:
    await conn.execute(
        """INSERT INTO review.expert_conflicts (program, application_no, expert_subject, source, reasons, recorded_by)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
        program, application_no, expert_subject, source, _json(reasons), recorded_by,
    )


async def excluded_experts(conn: asyncpg.Connection, application_no: str) -> int:
    return await conn.fetchval(
        "SELECT count(DISTINCT expert_subject) FROM review.expert_conflicts WHERE application_no = $1", application_no,
    )


async def insert_expert_score(conn: asyncpg.Connection, program: str, application_no: str, expert_subject: str,
                              scores: dict[str, Any], weighted_x100: int, idempotency_key: str) -> bool:
    """One expert's scores, once; False when this expert has scored already."""
    return bool(await conn.fetchval(
        """INSERT INTO review.expert_scores (application_no, expert_subject, program, scores, weighted_x100, idempotency_key)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6) ON CONFLICT DO NOTHING RETURNING true""",
        application_no, expert_subject, program, _json(scores), weighted_x100, idempotency_key,
    ))


async def expert_scores_of(conn: asyncpg.Connection, application_no: str, expert_subject: str | None = None) -> list[asyncpg.Record]:
    """The scores of the application's active (not declined) experts; only one expert's when named."""
    return await conn.fetch(
        """SELECT s.expert_subject, s.scores::text AS scores, s.weighted_x100, s.submitted_at
           FROM review.expert_scores s JOIN review.expert_assignments a
             ON a.application_no = s.application_no AND a.expert_subject = s.expert_subject AND a.declined_at IS NULL
           WHERE s.application_no = $1 AND ($2::text IS NULL OR s.expert_subject = $2) ORDER BY s.expert_subject""",
        application_no, expert_subject,
    )


async def store_product_score(conn: asyncpg.Connection, *, program: str, application_no: str, applicant_uscc: str,
                              score_units: int, score_text: str, tier: int | None, criteria: dict[str, int],
                              excluded: int, breakdown: dict[str, Any]) -> None:
    """The product's score (kept as first computed: the panel's scores do not change once complete)."""
    await conn.execute(
        """INSERT INTO review.product_scores (application_no, program, applicant_uscc, score_units, score_text, tier, criteria,
                                              excluded_experts, breakdown)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb) ON CONFLICT (application_no) DO NOTHING""",
        application_no, program, applicant_uscc, score_units, score_text, tier, _json(criteria), excluded, _json(breakdown),
    )


async def product_score_of(conn: asyncpg.Connection, application_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT application_no, program, applicant_uscc, score_units, score_text, tier, criteria::text AS criteria,
                  excluded_experts, breakdown::text AS breakdown, computed_at, recorded_at
           FROM review.product_scores WHERE application_no = $1""",
        application_no,
    )


async def mark_product_score_recorded(conn: asyncpg.Connection, application_no: str) -> None:
    await conn.execute(
        "UPDATE review.product_scores SET recorded_at = coalesce(recorded_at, now()) WHERE application_no = $1", application_no,
    )


async def unrecorded_panel_results(conn: asyncpg.Connection, *, older_than: timedelta, limit: int) -> list[asyncpg.Record]:
    """Panel results computed more than `older_than` ago that never reached their lifecycle, of
    products still at `expert_scoring` (scoring/panel_results.py asks again), oldest first."""
    return await conn.fetch(
        """SELECT p.application_no, p.program
           FROM review.product_scores p JOIN review.applications a ON a.application_no = p.application_no
           WHERE p.recorded_at IS NULL AND a.status = 'expert_scoring' AND p.computed_at < now() - $1::interval
           ORDER BY p.computed_at LIMIT $2""",
        older_than, limit,
    )


async def products_to_tier(conn: asyncpg.Connection, program: str) -> list[asyncpg.Record]:
    """The program's products at `tiering` with a product score whose tier the lifecycle has not accepted yet."""
    return await conn.fetch(
        """SELECT p.application_no, p.applicant_uscc, p.score_units, p.score_text, p.tier, p.breakdown::text AS breakdown
           FROM review.applications a JOIN review.product_scores p ON p.application_no = a.application_no
           LEFT JOIN review.tier_amounts t ON t.application_no = a.application_no
           WHERE a.program = $1 AND a.status = 'tiering' AND t.recorded_at IS NULL
           ORDER BY p.application_no""",
        program,
    )


async def awarded_in_year(conn: asyncpg.Connection, usccs: list[str], cap_year: int, excluding: list[str]) -> dict[str, int]:
    """Applicant USCC -> fen the lifecycles accepted in `cap_year`, other than the applications `excluding`."""
    rows = await conn.fetch(
        """SELECT applicant_uscc, sum(amount_fen) AS total FROM review.tier_amounts
           WHERE applicant_uscc = ANY($1::text[]) AND cap_year = $2 AND recorded_at IS NOT NULL
             AND NOT (application_no = ANY($3::text[]))
           GROUP BY applicant_uscc""",
        usccs, cap_year, excluding,
    )
    return {r["applicant_uscc"]: int(r["total"]) for r in rows}


async def recorded_against_budget(conn: asyncpg.Connection, program: str, cap_year: int, excluding: list[str]) -> int:
    """Fen of the program's tierings its lifecycles accepted in `cap_year` (earlier confirmations),
    other than the applications `excluding`: what the year's budget (02(一)) no longer holds."""
    return int(await conn.fetchval(
        """SELECT coalesce(sum(amount_fen), 0) FROM review.tier_amounts
           WHERE program = $1 AND cap_year = $2 AND recorded_at IS NOT NULL AND NOT (application_no = ANY($3::text[]))""",
        program, cap_year, excluding,
    ))


async def lock_tier_amounts(conn: asyncpg.Connection) -> None:
    if not conn.is_in_transaction():
        raise RuntimeError("lock_tier_amounts must run inside the confirmation's transaction")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", TIER_AMOUNTS_LOCK)


async def store_tier_amount(conn: asyncpg.Connection, *, program: str, application_no: str, applicant_uscc: str, cap_year: int,
                            tier: int | None, amount_fen: int, breakdown: dict[str, Any], idempotency_key: str,
                            confirmed_by: str) -> None:
    """The confirmed amount; a later confirmation replaces it until the lifecycle has accepted one."""
    await conn.execute(
        """INSERT INTO review.tier_amounts (application_no, program, applicant_uscc, cap_year, tier, amount_fen, breakdown,
                                            idempotency_key, confirmed_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
           ON CONFLICT (application_no) DO UPDATE SET tier = EXCLUDED.tier, amount_fen = EXCLUDED.amount_fen,
               breakdown = EXCLUDED.breakdown, idempotency_key = EXCLUDED.idempotency_key,
               confirmed_by = EXCLUDED.confirmed_by, confirmed_at = now()
           WHERE review.tier_amounts.recorded_at IS NULL""",
        application_no, program, applicant_uscc, cap_year, tier, amount_fen, _json(breakdown), idempotency_key, confirmed_by,
    )


async def tier_amount_of(conn: asyncpg.Connection, application_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT application_no, tier, amount_fen, breakdown::text AS breakdown, idempotency_key, recorded_at
           FROM review.tier_amounts WHERE application_no = $1""",
        application_no,
    )


async def mark_tier_amount_recorded(conn: asyncpg.Connection, application_no: str) -> None:
    await conn.execute(
        "UPDATE review.tier_amounts SET recorded_at = coalesce(recorded_at, now()) WHERE application_no = $1", application_no,
    )
# === end of awards-api section ===


# === public notice (公示): lists, versions, entries, objections (issue 13, services/review/notice/) ===


async def enterprise_names(conn: asyncpg.Connection, application_nos: list[str]) -> dict[str, dict[str, Any]]:
    """The latest recorded facts' applicant name and project/product of each application."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (application_no) application_no, program, facts FROM review.submissions
           WHERE application_no = ANY($1::text[]) ORDER BY application_no, version DESC""",
        application_nos,
    )
    return {r["application_no"]: json.loads(r["facts"]) if isinstance(r["facts"], str) else dict(r["facts"]) for r in rows}


async def store_notice_list(
    conn: asyncpg.Connection, *, notice_id: str, program: str, published_at: datetime, published_by: str,
    period_starts_at: datetime, period_ends_at: datetime, working_days: int, entries: list[dict[str, Any]],
) -> bool:
    """Version 1 of a published list; False when it was stored before (a retried activity)."""
    inserted = await conn.fetchval(
        """INSERT INTO review.notice_lists (notice_id, program, published_at, published_by, period_starts_at, period_ends_at,
                                           working_days)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (notice_id) DO NOTHING RETURNING true""",
        notice_id, program, published_at, published_by, period_starts_at, period_ends_at, working_days,
    )
    if not inserted:
        return False
    await insert_notice_version(conn, notice_id=notice_id, version=1, created_at=published_at, created_by=published_by,
                                reason=None, objection_id=None, entries=entries)
    return True


async def insert_notice_version(
    conn: asyncpg.Connection, *, notice_id: str, version: int, created_at: datetime, created_by: str, reason: str | None,
    objection_id: int | None, entries: list[dict[str, Any]],
) -> None:
    await conn.execute(
        """INSERT INTO review.notice_list_versions (notice_id, version, created_at, created_by, reason, objection_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        notice_id, version, created_at, created_by, reason, objection_id,
    )
    await conn.executemany(
        """INSERT INTO review.notice_entries (notice_id, version, application_no, workflow_id, enterprise_name, project, tier, award_fen)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [(notice_id, version, e["application_no"], e["workflow_id"], e["enterprise_name"], e["project"], e["tier"], e["award_fen"])
         for e in entries],
    )


async def withdrawals_of(conn: asyncpg.Connection, application_nos: list[str]) -> list[asyncpg.Record]:
    """The `withdrawn` state changes review has of these applications (who withdrew, when)."""
    return await conn.fetch(
        """SELECT application_no, actor, occurred_at FROM review.state_changes
           WHERE application_no = ANY($1::text[]) AND to_status = 'withdrawn' ORDER BY application_no""",
        application_nos,
    )


async def current_notice(conn: asyncpg.Connection, program: str) -> asyncpg.Record | None:
    """The program's latest published list, with its latest version number."""
    return await conn.fetchrow(
        """SELECT l.*, (SELECT max(version) FROM review.notice_list_versions v WHERE v.notice_id = l.notice_id) AS latest_version
           FROM review.notice_lists l WHERE program = $1 ORDER BY published_at DESC, notice_id DESC LIMIT 1""",
        program,
    )


async def notice_lists_of(conn: asyncpg.Connection, program: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT l.*, (SELECT max(version) FROM review.notice_list_versions v WHERE v.notice_id = l.notice_id) AS latest_version
           FROM review.notice_lists l WHERE program = $1 ORDER BY published_at DESC, notice_id DESC""",
        program,
    )


async def notice_list(conn: asyncpg.Connection, notice_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT l.*, (SELECT max(version) FROM review.notice_list_versions v WHERE v.notice_id = l.notice_id) AS latest_version
           FROM review.notice_lists l WHERE notice_id = $1""" + (" FOR UPDATE" if for_update else ""),
        notice_id,
    )


async def notice_version(conn: asyncpg.Connection, notice_id: str, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM review.notice_list_versions WHERE notice_id = $1 AND version = $2", notice_id, version)


async def notice_versions(conn: asyncpg.Connection, notice_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM review.notice_list_versions WHERE notice_id = $1 ORDER BY version", notice_id)


async def notice_entries(conn: asyncpg.Connection, notice_id: str, version: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT application_no, workflow_id, enterprise_name, project, tier, award_fen FROM review.notice_entries
           WHERE notice_id = $1 AND version = $2 ORDER BY application_no""",
        notice_id, version,
    )


async def insert_objection(
    conn: asyncpg.Connection, *, program: str, notice_id: str, application_no: str, name: str, phone_masked: str,
    organisation: str, grounds: str, filed_at: datetime,
) -> int:
    """The objection and its task for the program's administrator (one open task per entry)."""
    objection_id: int = await conn.fetchval(
        """INSERT INTO review.notice_objections (notice_id, application_no, objector_name, phone_masked, organisation, grounds, filed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        notice_id, application_no, name, phone_masked, organisation, grounds, filed_at,
    )
    await _open_task(conn, program, application_no, NOTICE_OBJECTION, None, filed_at, None, f"objection:{objection_id}")
    return objection_id


async def objection(conn: asyncpg.Connection, objection_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT o.*, l.program FROM review.notice_objections o JOIN review.notice_lists l USING (notice_id)
           WHERE o.id = $1""" + (" FOR UPDATE OF o" if for_update else ""),
        objection_id,
    )


async def objections_of(conn: asyncpg.Connection, notice_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM review.notice_objections WHERE notice_id = $1 ORDER BY id", notice_id)


async def open_objections(conn: asyncpg.Connection, notice_id: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM review.notice_objections WHERE notice_id = $1 AND status = 'open'", notice_id))


async def decide_objection(
    conn: asyncpg.Connection, objection_id: int, *, status: str, decided_at: datetime, decided_by: str, reason: str,
    new_award_fen: int | None, new_tier: int | None, removed: bool, resulting_version: int | None,
) -> None:
    await conn.execute(
        """UPDATE review.notice_objections SET status = $2, decided_at = $3, decided_by = $4, decision_reason = $5,
                  new_award_fen = $6, new_tier = $7, removed = $8, resulting_version = $9
           WHERE id = $1 AND status = 'open'""",
        objection_id, status, decided_at, decided_by, reason, new_award_fen, new_tier, removed, resulting_version,
    )
    still_open = await conn.fetchval(
        """SELECT count(*) FROM review.notice_objections o JOIN review.notice_objections d ON d.id = $1
           WHERE o.notice_id = d.notice_id AND o.application_no = d.application_no AND o.status = 'open'""",
        objection_id,
    )
    if not still_open:  # the entry's objection task is done
        application_no = await conn.fetchval("SELECT application_no FROM review.notice_objections WHERE id = $1", objection_id)
        await _close_objection_task(conn, application_no, by=decided_by, at=decided_at, status=status)


async def close_objections_of_withdrawn(
    conn: asyncpg.Connection, notice_id: str, application_no: str, *, at: datetime, by: str, reason: str,
    version: int | None,
) -> list[int]:
    """The open objections to an entry the enterprise withdrew (the list's `version` left it out;
    None: an upheld objection had already removed it): closed as 'withdrawn', with the entry's
    objection task. Their ids."""
    closed = [r["id"] for r in await conn.fetch(
        """UPDATE review.notice_objections SET status = 'withdrawn', decided_at = $3, decided_by = $4,
                  decision_reason = $5, resulting_version = $6
           WHERE notice_id = $1 AND application_no = $2 AND status = 'open' RETURNING id""",
        notice_id, application_no, at, by, reason, version,
    )]
    if closed:
        await _close_objection_task(conn, application_no, by=by, at=at, status="withdrawn")
    return sorted(closed)


async def _close_objection_task(conn: asyncpg.Connection, application_no: str, *, by: str, at: datetime, status: str) -> None:
    """The entry's objection task (one per application while any objection to it is open) is done."""
    await conn.execute(
        """UPDATE review.tasks SET closed_by = $2, closed_at = $3, closed_to_status = $4
           WHERE application_no = $1 AND step = 'notice_objection' AND closed_at IS NULL""",
        application_no, by, at, status,
    )


async def finalize_notice(conn: asyncpg.Connection, notice_id: str, at: datetime) -> int:
    """The list's latest version is final (idempotent: the first final version stays)."""
    await conn.execute(
        """UPDATE review.notice_lists SET final_version = (SELECT max(version) FROM review.notice_list_versions WHERE notice_id = $1),
                  finalized_at = $2
           WHERE notice_id = $1 AND final_version IS NULL""",
        notice_id, at,
    )
    return int(await conn.fetchval("SELECT final_version FROM review.notice_lists WHERE notice_id = $1", notice_id))


async def applications_for_export(conn: asyncpg.Connection, programs: list[str], program: str | None, status: str | None,
                                  limit: int, *, newest_first: bool = False, application_no: str | None = None) -> list[asyncpg.Record]:
    """The applications of the caller's programs as the read model has them (XLSX export of the list;
    the console's lists: newest first, or one application by number)."""
    order = "a.status_since DESC, a.application_no" if newest_first else "a.program, a.application_no"
    return await conn.fetch(
        """SELECT a.application_no, a.program, a.status, a.version, a.deadline, a.status_since,
                  (SELECT s.facts->'applicant'->>'name' FROM review.submissions s WHERE s.application_no = a.application_no
                   ORDER BY s.version DESC LIMIT 1) AS enterprise_name
           FROM review.applications a
           WHERE a.program = ANY($1::text[]) AND ($2::text IS NULL OR a.program = $2) AND ($3::text IS NULL OR a.status = $3)
             AND ($5::text IS NULL OR a.application_no = $5)
           ORDER BY """ + order + " LIMIT $4",
        programs, program, status, limit, application_no,
    )


# --- console additions (issue 12): computed deadlines, officials seen, applications list ---------


async def record_computed_deadline(conn: asyncpg.Connection, *, application_no: str, program: str, kind: str,
                                   trigger_at: datetime, trigger_kind: str, deadline: datetime, working_days: int,
                                   calendar_version: str) -> None:
    """A deadline the deadline activity counted in working days, with the calendar data's version
    (a retry that computes it again keeps one row: the version it last returned)."""
    await conn.execute(
        """INSERT INTO review.computed_deadlines (application_no, program, kind, trigger_at, trigger_kind, deadline,
                                                  working_days, calendar_version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (application_no, kind, trigger_at) DO UPDATE
               SET deadline = EXCLUDED.deadline, working_days = EXCLUDED.working_days,
                   calendar_version = EXCLUDED.calendar_version, computed_at = now()""",
        application_no, program, kind, trigger_at, trigger_kind, deadline, working_days, calendar_version,
    )


async def computed_deadlines_of(conn: asyncpg.Connection, application_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT kind, trigger_at, trigger_kind, deadline, working_days, calendar_version, computed_at
           FROM review.computed_deadlines WHERE application_no = $1 ORDER BY computed_at, trigger_at""",
        application_no,
    )


async def officials_of(conn: asyncpg.Connection, program: str, role: str) -> list[asyncpg.Record]:
    """The officials who have acted in the program with the role (their decisions), most recent first:
    whom an administrator may give a task of that role to (the issuer, not the platform, holds the
    staff directory; an official who has never acted is not offered)."""
    return await conn.fetch(
        """SELECT actor_subject AS subject, max(decided_at) AS last_acted_at, count(*) AS decisions
           FROM review.decisions WHERE program = $1 AND actor_role = $2
           GROUP BY actor_subject ORDER BY max(decided_at) DESC LIMIT 200""",
        program, role,
    )


# --- the Longgang batch budget (issue 11, wave 3 `budget`: migration 114) ---------------------------


async def lock_program_budget(conn: asyncpg.Connection, program: str) -> None:
    """Serialise, for this transaction, applying a program's budget and publishing its list."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('review.budget:' || $1))", program)


async def published_award_total(conn: asyncpg.Connection, program: str) -> int:
    """The awards on the program's lists already published (as published)."""
    return int(await conn.fetchval(
        """SELECT coalesce(sum(e.award_fen), 0) FROM review.publication_entries e
           JOIN review.publication_notices n USING (notice_id) WHERE n.program = $1""",
        program,
    ))


async def confirmed_awards(conn: asyncpg.Connection, application_nos: list[str]) -> dict[str, asyncpg.Record]:
    """Each application's latest confirmed (or adjusted) award: confirmed_fen, applicant_uscc, cap_year."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (application_no) application_no, version, applicant_uscc, cap_year, confirmed_fen
           FROM review.award_computations WHERE application_no = ANY($1::text[]) AND status <> 'computed'
           ORDER BY application_no, version DESC""",
        application_nos,
    )
    return {r["application_no"]: r for r in rows}


async def store_budget_application(
    conn: asyncpg.Connection, *, program: str, idempotency_key: str, budget_fen: int, published_before_fen: int,
    available_fen: int, confirmed_total_fen: int, revised_total_fen: int, applied_by: str,
    revisions: list[tuple[str, int, int, int]],
) -> int:
    """Keep one application of the budget and its planned revisions (application_no, confirmed, listed,
    revised); the same key again returns the first one's id (its revisions kept as first planned)."""
    budget_id = await conn.fetchval(
        """INSERT INTO review.budget_applications (program, idempotency_key, budget_fen, published_before_fen, available_fen,
                                                   confirmed_total_fen, revised_total_fen, applied_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id""",
        program, idempotency_key, budget_fen, published_before_fen, available_fen, confirmed_total_fen, revised_total_fen,
        applied_by,
    )
    if budget_id is None:
        return int(await conn.fetchval("SELECT id FROM review.budget_applications WHERE idempotency_key = $1", idempotency_key))
    await conn.executemany(
        """INSERT INTO review.award_revisions (budget_application_id, application_no, confirmed_fen, listed_fen, revised_fen)
           VALUES ($1, $2, $3, $4, $5)""",
        [(budget_id, app, confirmed, listed, revised) for app, confirmed, listed, revised in revisions],
    )
    return int(budget_id)


async def mark_revision_recorded(conn: asyncpg.Connection, budget_application_id: int, application_no: str) -> None:
    await conn.execute(
        """UPDATE review.award_revisions SET recorded_at = coalesce(recorded_at, now())
           WHERE budget_application_id = $1 AND application_no = $2""",
        budget_application_id, application_no,
    )


async def revise_reservation(conn: asyncpg.Connection, application_no: str, amount_fen: int) -> None:
    """The application's share of its enterprise's yearly cap after the budget (hold lock_enterprise_year)."""
    await conn.execute("UPDATE review.award_reservations SET amount_fen = $2 WHERE application_no = $1", application_no, amount_fen)


async def recorded_revisions(conn: asyncpg.Connection, program: str) -> dict[str, asyncpg.Record]:
    """Each application's latest revision its lifecycle accepted (revised_fen, applied_at, applied_by)."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (r.application_no) r.application_no, r.confirmed_fen, r.revised_fen, b.applied_at, b.applied_by
           FROM review.award_revisions r JOIN review.budget_applications b ON b.id = r.budget_application_id
           WHERE b.program = $1 AND r.recorded_at IS NOT NULL
           ORDER BY r.application_no, r.recorded_at DESC""",
        program,
    )
    return {r["application_no"]: r for r in rows}


async def rewrite_finding(conn: asyncpg.Connection, application_no: str, version: int, finding: dict[str, Any]) -> int:
    """Rewrite one stored finding of a version (its position kept); 0 when that version has none of the rule."""
    result = await conn.execute(
        """UPDATE review.pre_check_findings SET clause = $4, passed = $5, detail = $6, explanation = $7, evidence = $8::jsonb,
                  ruleset_version = $9, reference_version = $10, checked_at = now()
           WHERE application_no = $1 AND version = $2 AND rule = $3""",
        application_no, version, finding["rule"], finding["clause"], finding["passed"], finding["detail"], finding["explanation"],
        _json(finding["evidence"]), finding["ruleset_version"], finding.get("reference_version"),
    )
    return int(result.split()[-1])


async def recorded_revision(conn: asyncpg.Connection, application_no: str) -> asyncpg.Record | None:
    """The application's latest budget revision its lifecycle accepted, if any."""
    return await conn.fetchrow(
        """SELECT r.confirmed_fen, r.revised_fen, b.applied_at, b.applied_by
           FROM review.award_revisions r JOIN review.budget_applications b ON b.id = r.budget_application_id
           WHERE r.application_no = $1 AND r.recorded_at IS NOT NULL ORDER BY r.recorded_at DESC LIMIT 1""",
        application_no,
    )
