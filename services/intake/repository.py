"""SQL of the intake schema (explicit, over asyncpg; the pool's search_path is `intake`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from subsidy.outbox import OUTBOX_WRITTEN, OutboxEvent, outbox_ctes

Executor = asyncpg.Pool | asyncpg.Connection  # a pool runs a statement on a connection it lends for it


@dataclass(frozen=True)
class Known:
    """What intake knows before it acts on an inbound event."""

    processed: bool  # the inbox has the event (its source and id): a redelivery, nothing to do
    program: str | None  # the application's program, from its first version; None: never submitted
    latest_version: int  # 0 when no version is stored


@dataclass(frozen=True)
class Inbound:
    """An inbound event and what became of it (the `inbound_events` row)."""

    event_id: str
    topic: str
    type: str
    source: str
    application_no: str
    event_time: datetime
    applied: bool
    reason: str | None


@dataclass(frozen=True)
class Version:
    """One immutable version of a submission, its personal data already sealed out of `payload`."""

    application_no: str
    version: int
    program: str
    event_id: str
    submitted_at: datetime
    applicant_uscc: str
    payload: dict[str, Any]
    sealed: dict[str, Any]
    lookups: Sequence[tuple[str, str, str]]  # (field, kind, lookup hash)
    materials: Sequence[dict[str, Any]]


async def known(db: Executor, *, consumer: str, source: str, event_id: str, application_no: str) -> Known:
    """What is known before acting on the event `(source, event_id)`: a CloudEvents id is unique
    only per source, so both name the event."""
    row = await db.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND source = $4 AND event_id = $2) AS processed,
                  (SELECT program FROM application_versions WHERE application_no = $3 AND version = 1) AS program,
                  (SELECT coalesce(max(version), 0) FROM application_versions WHERE application_no = $3) AS latest""",
        consumer, event_id, application_no, source,
    )
    assert row is not None
    return Known(processed=row["processed"], program=row["program"], latest_version=int(row["latest"]))


async def record_effect(
    db: Executor, *, consumer: str, inbound: Inbound, version: Version | None, events: Sequence[OutboxEvent]
) -> None:
    """Everything an inbound event leaves behind, in ONE statement (one round trip, atomic): the
    inbox row and the `inbound_events` row (keyed on the event's source and id), the new version
    (its `event_source` is the inbound event's) with its lookup hashes and materials (if
    any), and the events to publish (outbox, with its NOTIFY).

    Nothing is written when the event is in the inbox already or the version exists already: the
    statement fails with `asyncpg.UniqueViolationError` (another consumer got there first, which
    only happens while partitions move between intake processes).
    """
    params: list[Any] = [
        consumer, inbound.event_id, inbound.topic, inbound.type, inbound.source, inbound.application_no,
        inbound.event_time, "applied" if inbound.applied else "refused", inbound.reason,
    ]
    ctes = [
        "inbox_row AS (INSERT INTO inbox (consumer, source, event_id, topic) VALUES ($1, $5, $2, $3))",
        """inbound_row AS (
               INSERT INTO inbound_events (event_id, topic, type, source, application_no, event_time, outcome, reason)
               VALUES ($2, $3, $4, $5, $6, $7, $8, $9))""",
    ]
    if version is not None:
        n = len(params) + 1
        ctes.append(f"""version AS (
               INSERT INTO application_versions
                   (application_no, version, program, event_id, event_source, submitted_at, applicant_uscc, payload, sealed)
               VALUES (${n}, ${n + 1}, ${n + 2}, ${n + 3}, $5, ${n + 4}, ${n + 5}, ${n + 6}::jsonb, ${n + 7}::jsonb)
               RETURNING application_no, version),
           lookups AS (
               INSERT INTO personal_lookup (application_no, version, field, kind, lookup_hash)
               SELECT v.application_no, v.version, l.field, l.kind, l.lookup_hash
               FROM version v, unnest(${n + 8}::text[], ${n + 9}::text[], ${n + 10}::text[]) AS l (field, kind, lookup_hash)),
           materials AS (
               INSERT INTO materials (application_no, version, file_id, kind, sha256, pages)
               SELECT v.application_no, v.version, m.file_id, m.kind, m.sha256, m.pages
               FROM version v, unnest(${n + 11}::text[], ${n + 12}::text[], ${n + 13}::text[], ${n + 14}::integer[])
                    AS m (file_id, kind, sha256, pages))""")
        params += [
            version.application_no, version.version, version.program, version.event_id, version.submitted_at,
            version.applicant_uscc, json.dumps(version.payload, ensure_ascii=False), json.dumps(version.sealed),
            [field for field, _, _ in version.lookups], [kind for _, kind, _ in version.lookups],
            [digest for _, _, digest in version.lookups],
            [m["file_id"] for m in version.materials], [m["kind"] for m in version.materials],
            [m["sha256"] for m in version.materials], [m.get("pages") for m in version.materials],
        ]
    outbox, outbox_params = outbox_ctes(events, first_param=len(params) + 1)
    ctes.append(outbox)
    await db.fetchval(f"WITH {', '.join(ctes)} SELECT {OUTBOX_WRITTEN}", *params, *outbox_params)


async def application_view(conn: asyncpg.Connection, application_no: str) -> dict[str, Any] | None:
    """The read side of one application: where it is, its versions, and its history of events
    and state changes in time order. No personal data: names and sealed fields stay out."""
    first = await conn.fetchrow(
        "SELECT program, submitted_at FROM application_versions WHERE application_no = $1 AND version = 1", application_no
    )
    current = await conn.fetchrow(
        "SELECT program, status, version, deadline, status_since FROM applications WHERE application_no = $1", application_no
    )
    if first is None and current is None:
        return None
    versions = await conn.fetch(
        """SELECT v.version, v.submitted_at, v.received_at, count(m.file_id) AS materials
           FROM application_versions v LEFT JOIN materials m USING (application_no, version)
           WHERE v.application_no = $1 GROUP BY v.version, v.submitted_at, v.received_at ORDER BY v.version""",
        application_no,
    )
    events = await conn.fetch(
        """SELECT event_time AS at, 'event' AS kind, type AS what, outcome, reason, source AS by
           FROM inbound_events WHERE application_no = $1
           UNION ALL
           SELECT occurred_at, 'state', coalesce(from_status, '') || ' -> ' || to_status, NULL, reason, actor
           FROM state_changes WHERE application_no = $1
           ORDER BY at""",
        application_no,
    )
    return {
        "application_no": application_no,
        "program": (current or first)["program"],
        "status": current["status"] if current else "submitted",
        "deadline": _iso(current["deadline"]) if current else None,
        "version": current["version"] if current else (versions[-1]["version"] if versions else None),
        "versions": [
            {"version": v["version"], "submitted_at": _iso(v["submitted_at"]), "received_at": _iso(v["received_at"]),
             "materials": v["materials"]}
            for v in versions
        ],
        "history": [
            {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in dict(e).items() if v is not None} for e in events
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def erase_personal_data(conn: asyncpg.Connection, program: str, *, actor: str) -> dict[str, Any]:
    """`subsidy retention run`: the program's sealed ID and mobile numbers and their lookup hashes
    erased, one audit row; the versions (USCC, facts without personal data), events and state
    changes stay. Run again: nothing more to erase, nothing audited."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """WITH erased AS (
                   UPDATE application_versions SET sealed = '{}'::jsonb
                   WHERE program = $1 AND sealed <> '{}'::jsonb
                   RETURNING application_no, version),
               hashes AS (
                   DELETE FROM personal_lookup l USING application_versions v
                   WHERE l.application_no = v.application_no AND l.version = v.version AND v.program = $1
                   RETURNING 1)
               SELECT (SELECT count(DISTINCT application_no) FROM erased) AS applications,
                      (SELECT count(*) FROM erased) AS versions, (SELECT count(*) FROM hashes) AS lookup_hashes""",
            program,
        )
        done = {"program": program, **dict(row)}
        if row["versions"] or row["lookup_hashes"]:
            await conn.execute(
                "INSERT INTO audit_log (actor, action, detail) VALUES ($1, 'retention.erase_personal_data', $2::jsonb)",
                actor, json.dumps(done),
            )
    return done
