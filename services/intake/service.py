"""Use cases of the intake service."""

from __future__ import annotations

import asyncpg
import structlog

from subsidy.audit import record_audit
from subsidy.contracts.events import ParsedEvent
from subsidy.messaging import handle_once

CONSUMER = "intake.inbound"
log = structlog.get_logger(__name__)


async def record_received(pool: asyncpg.Pool, *, topic: str, event: ParsedEvent) -> bool:
    """Record a valid inbound event once (its id is the portal's; redeliveries are no-ops)."""
    envelope = event.envelope

    async def effect(conn: asyncpg.Connection) -> None:
        await record_audit(conn, application_no=envelope.subject, action=f"received {envelope.type}", actor=envelope.source)

    first_time = await handle_once(pool, consumer=CONSUMER, event_id=envelope.id, topic=topic, effect=effect)
    log.info("event received" if first_time else "event already processed", application_no=envelope.subject, event_type=envelope.type)
    return first_time
