"""The append-only audit log every service schema has (see subsidy/db/shared_migrations)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from subsidy.contracts.platform_events import ApplicationStateChanged


async def record_audit(
    conn: asyncpg.Connection,
    *,
    application_no: str | None,
    actor: str,
    action: str,
    detail: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> None:
    """Append one audit row in the caller's transaction (the connection's search_path picks the schema)."""
    await conn.execute(
        "INSERT INTO audit_log (application_no, actor, action, detail, correlation_id) VALUES ($1, $2, $3, $4::jsonb, $5)",
        application_no,
        actor,
        action,
        json.dumps(detail or {}, ensure_ascii=False),
        correlation_id,
    )


async def audit_state_change_once(pool: asyncpg.Pool, *, consumer: str, event: ApplicationStateChanged) -> bool:
    """Audit a lifecycle state change in the consumer's schema, once per event id."""
    from subsidy.contracts.topics import APPLICATION_STATE_CHANGED
    from subsidy.messaging import handle_once

    async def effect(conn: asyncpg.Connection) -> None:
        await record_audit(
            conn,
            application_no=event.application_no,
            actor=event.actor,
            action=f"state {event.from_state} -> {event.to_state}",
            correlation_id=event.correlation_id,
        )

    return await handle_once(pool, consumer=consumer, event_id=event.event_id, topic=APPLICATION_STATE_CHANGED, effect=effect)
