"""SQL of the notify schema (explicit, over asyncpg; the pool's search_path is `notify`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

async def upsert_contact(
    conn: asyncpg.Connection, *, application_no: str, program: str, version: int, applicant_name: str,
    mobile_sealed: dict[str, str], mobile_hash: str, mobile_masked: str,
) -> None:
    """The latest version's contact wins; an older one arriving late changes nothing."""
    await conn.execute(
        """INSERT INTO contacts (application_no, program, version, applicant_name, mobile_sealed, mobile_hash, mobile_masked)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
           ON CONFLICT (application_no) DO UPDATE SET
               version = EXCLUDED.version, applicant_name = EXCLUDED.applicant_name, mobile_sealed = EXCLUDED.mobile_sealed,
               mobile_hash = EXCLUDED.mobile_hash, mobile_masked = EXCLUDED.mobile_masked, updated_at = now()
           WHERE contacts.version <= EXCLUDED.version""",
        application_no, program, version, applicant_name, json.dumps(mobile_sealed), mobile_hash, mobile_masked,
    )


async def remember_award(conn: asyncpg.Connection, application_no: str, *, award_fen: int | None, tier: int | None) -> None:
    await conn.execute(
        "UPDATE contacts SET award_fen = $2, tier = $3, updated_at = now() WHERE application_no = $1", application_no, award_fen, tier
    )


async def contact(conn: asyncpg.Connection, application_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM contacts WHERE application_no = $1", application_no)


async def queue_message(
    conn: asyncpg.Connection, *, idempotency_key: str, application_no: str, program: str, kind: str, text: str,
    sign_name: str, params: dict[str, Any], mobile_hash: str, mobile_masked: str, not_before: datetime,
    source_event_id: str, correlation_id: str | None,
) -> uuid.UUID | None:
    """Queue a notice once per idempotency key; None when it was queued before."""
    return await conn.fetchval(
        """INSERT INTO sms_messages (message_id, idempotency_key, application_no, program, kind, text, sign_name, params,
                                     mobile_hash, mobile_masked, status, not_before, source_event_id, correlation_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, 'pending', $11, $12, $13)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING message_id""",
        uuid.uuid4(), idempotency_key, application_no, program, kind, text, sign_name, json.dumps(params, ensure_ascii=False),
        mobile_hash, mobile_masked, not_before, source_event_id, correlation_id,
    )


async def claim_due(conn: asyncpg.Connection, *, limit: int) -> list[asyncpg.Record]:
    """Due messages nobody works on: pending ones, and `sending` ones whose sender's lease ran out
    (it crashed between marking and recording the provider's answer). Call inside a transaction."""
    return await conn.fetch(
        """SELECT * FROM sms_messages
           WHERE not_before <= now()
             AND (status = 'pending' OR (status = 'sending' AND lease_until < now()))
           ORDER BY not_before LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def last_same_text_sent(conn: asyncpg.Connection, *, mobile_hash: str, text: str, message_id: uuid.UUID) -> datetime | None:
    return await conn.fetchval(
        """SELECT max(sent_at) FROM sms_messages
           WHERE mobile_hash = $1 AND text = $2 AND message_id <> $3 AND sent_at IS NOT NULL""",
        mobile_hash, text, message_id,
    )


async def sent_since(conn: asyncpg.Connection, *, mobile_hash: str, since: datetime) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM sms_messages WHERE mobile_hash = $1 AND sent_at >= $2", mobile_hash, since
    ))


async def postpone(conn: asyncpg.Connection, message_id: uuid.UUID, until: datetime, reason: str) -> None:
    await conn.execute(
        "UPDATE sms_messages SET not_before = $2, last_error = $3, updated_at = now() WHERE message_id = $1",
        message_id, until, reason,
    )


async def mark_sending(conn: asyncpg.Connection, message_id: uuid.UUID, *, lease: timedelta) -> None:
    """Recorded (committed) before any provider is called; `lease`: how long this sender may work on
    it before another takes it over (and first asks the providers whether they have it)."""
    await conn.execute(
        """UPDATE sms_messages SET status = 'sending', attempts = attempts + 1, lease_until = now() + $2,
                  sent_at = coalesce(sent_at, now()), updated_at = now()
           WHERE message_id = $1""",
        message_id, lease,
    )


async def mark_accepted(conn: asyncpg.Connection, message_id: uuid.UUID, *, provider: str, provider_message_id: str | None) -> None:
    await conn.execute(
        """UPDATE sms_messages SET status = 'accepted', provider = $2, provider_message_id = $3, lease_until = NULL,
                  next_provider = NULL, tried_providers = array_append(tried_providers, $2), sent_at = now(), updated_at = now()
           WHERE message_id = $1 AND status = 'sending'""",
        message_id, provider, provider_message_id,
    )


async def extend_lease(conn: asyncpg.Connection, message_id: uuid.UUID, *, until: datetime, reason: str) -> None:
    """Keep a message `sending` (so the next round reconciles it again, never sends it blindly)."""
    await conn.execute(
        "UPDATE sms_messages SET lease_until = $2, last_error = $3, updated_at = now() WHERE message_id = $1 AND status = 'sending'",
        message_id, until, reason,
    )


async def retry_later(conn: asyncpg.Connection, message_id: uuid.UUID, *, at: datetime, error: str, next_provider: str | None) -> None:
    await conn.execute(
        """UPDATE sms_messages SET status = 'pending', not_before = $2, last_error = $3, next_provider = $4,
                  lease_until = NULL, updated_at = now()
           WHERE message_id = $1""",
        message_id, at, error, next_provider,
    )


async def message_for_receipt(conn: asyncpg.Connection, message_id: str) -> asyncpg.Record | None:
    """A receipt names our message id (OutId / SessionContext) or the provider's id."""
    try:
        ours = uuid.UUID(message_id)
    except ValueError:
        ours = None
    return await conn.fetchrow(
        "SELECT * FROM sms_messages WHERE message_id = $1 OR provider_message_id = $2 FOR UPDATE", ours, message_id
    )


async def mark_delivered(conn: asyncpg.Connection, message_id: uuid.UUID, at: datetime) -> None:
    await conn.execute(
        """UPDATE sms_messages SET status = 'delivered', delivered_at = $2, lease_until = NULL, updated_at = now()
           WHERE message_id = $1""",
        message_id, at,
    )


async def count_delivery_failure(conn: asyncpg.Connection, message_id: uuid.UUID, error: str | None) -> int:
    return int(await conn.fetchval(
        """UPDATE sms_messages SET delivery_failures = delivery_failures + 1, last_error = $2, updated_at = now()
           WHERE message_id = $1 RETURNING delivery_failures""",
        message_id, error,
    ))


async def create_phone_task(conn: asyncpg.Connection, message_id: uuid.UUID, application_no: str, reason: str) -> bool:
    await conn.execute(
        "UPDATE sms_messages SET status = 'phone_task', lease_until = NULL, last_error = $2, updated_at = now() WHERE message_id = $1",
        message_id, reason,
    )
    return bool(await conn.fetchval(
        """INSERT INTO phone_tasks (message_id, application_no, reason) VALUES ($1, $2, $3)
           ON CONFLICT (message_id) DO NOTHING RETURNING true""",
        message_id, application_no, reason,
    ))


async def sms_log(
    conn: asyncpg.Connection, *, application_no: str | None, limit: int, programs: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The SMS log for operators: numbers masked, texts as sent; only `programs` when given (the
    programs the caller's token grants)."""
    rows = await conn.fetch(
        """SELECT message_id, application_no, program, kind, status, provider, mobile_masked, attempts,
                  delivery_failures, text, last_error, created_at, sent_at, delivered_at
           FROM sms_messages
           WHERE ($1::text IS NULL OR application_no = $1) AND ($3::text[] IS NULL OR program = ANY($3::text[]))
           ORDER BY created_at DESC LIMIT $2""",
        application_no, limit, None if programs is None else list(programs),
    )
    return [dict(row) for row in rows]
