"""SQL of the intake schema (explicit, over asyncpg; the pool's search_path is `intake`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg


async def program_of(conn: asyncpg.Connection, application_no: str) -> str | None:
    return await conn.fetchval("SELECT program FROM application_versions WHERE application_no = $1 AND version = 1", application_no)


async def latest_version(conn: asyncpg.Connection, application_no: str) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM application_versions WHERE application_no = $1", application_no))


async def insert_version(
    conn: asyncpg.Connection,
    *,
    application_no: str,
    version: int,
    program: str,
    event_id: str,
    submitted_at: datetime,
    applicant_uscc: str,
    payload: dict[str, Any],
    sealed: dict[str, Any],
    lookups: Sequence[tuple[str, str, str]],
    materials: Sequence[dict[str, Any]],
) -> bool:
    """One immutable version with its sealed personal data, lookup hashes and materials, in one
    statement (one round trip). False, and nothing written, when this version already exists."""
    stored = await conn.fetchval(
        """WITH version AS (
               INSERT INTO application_versions
                   (application_no, version, program, event_id, submitted_at, applicant_uscc, payload, sealed)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)
               ON CONFLICT (application_no, version) DO NOTHING
               RETURNING application_no, version),
           lookups AS (
               INSERT INTO personal_lookup (application_no, version, field, kind, lookup_hash)
               SELECT v.application_no, v.version, l.field, l.kind, l.lookup_hash
               FROM version v, unnest($9::text[], $10::text[], $11::text[]) AS l (field, kind, lookup_hash)),
           materials AS (
               INSERT INTO materials (application_no, version, file_id, kind, sha256, pages)
               SELECT v.application_no, v.version, m.file_id, m.kind, m.sha256, m.pages
               FROM version v, unnest($12::text[], $13::text[], $14::text[], $15::integer[]) AS m (file_id, kind, sha256, pages))
           SELECT count(*) FROM version""",
        application_no, version, program, event_id, submitted_at, applicant_uscc,
        json.dumps(payload, ensure_ascii=False), json.dumps(sealed),
        [field for field, _, _ in lookups], [kind for _, kind, _ in lookups], [digest for _, _, digest in lookups],
        [m["file_id"] for m in materials], [m["kind"] for m in materials], [m["sha256"] for m in materials],
        [m.get("pages") for m in materials],
    )
    return bool(stored)


async def record_inbound(
    conn: asyncpg.Connection,
    *,
    event_id: str,
    topic: str,
    type: str,
    source: str,
    application_no: str,
    event_time: datetime,
    applied: bool,
    reason: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO inbound_events (event_id, topic, type, source, application_no, event_time, outcome, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        event_id, topic, type, source, application_no, event_time, "applied" if applied else "refused", reason,
    )


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
