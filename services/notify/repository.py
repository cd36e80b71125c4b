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


async def mark_sending(conn: asyncpg.Connection, message_id: uuid.UUID, *, lease: timedelta) -> uuid.UUID:
    """Claim the message: recorded (committed) before any provider is called; `lease`: how long this
    sender may work on it before another takes it over (and first asks the providers whether they
    have it). Returns the lease's fencing token: every later write of this sender names it."""
    token = uuid.uuid4()
    await conn.execute(
        """UPDATE sms_messages SET status = 'sending', lease_until = now() + $2, lease_token = $3,
                  sent_at = coalesce(sent_at, now()), updated_at = now()
           WHERE message_id = $1""",
        message_id, lease, token,
    )
    return token


async def hold_lease_to_call(
    conn: asyncpg.Connection, message_id: uuid.UUID, *, token: uuid.UUID, lease: timedelta, provider: str,
    settled: str | None, first_call: bool,
) -> bool:
    """Right before `provider` is called: True, with the lease extended and the provider recorded as
    one that may have the message, only if this sender (`token`) still holds an unexpired lease on
    the row in `sending`. One statement: check and extension are atomic, so a sender whose lease
    ran out (another replica took the row over) never calls a provider. `settled`: the provider
    called before in this round, which answered that it did not take the message. `first_call`
    counts the round as an attempt and starts the list afresh (the providers that were unsure have
    just been asked: none has it). `sent_at` becomes the call's time: a provider is asked about the
    message from then on (Tencent's grace for unreported messages counts from it)."""
    return bool(await conn.fetchval(
        """UPDATE sms_messages SET lease_until = now() + $3, sent_at = now(),
                  unsure_providers = CASE WHEN $6 THEN ARRAY[$4::text]
                      ELSE array_append(array_remove(coalesce(unsure_providers, '{}'), $5::text), $4::text) END,
                  attempts = attempts + CASE WHEN $6 THEN 1 ELSE 0 END, updated_at = now()
           WHERE message_id = $1 AND lease_token = $2 AND status = 'sending' AND lease_until > now()
           RETURNING true""",
        message_id, token, lease, provider, settled, first_call,
    ))


async def mark_accepted(conn: asyncpg.Connection, message_id: uuid.UUID, *, provider: str, provider_message_id: str | None) -> None:
    """The provider has it (its accept, or its record found by reconciliation): never sent again."""
    await conn.execute(
        """UPDATE sms_messages SET status = 'accepted', provider = $2, provider_message_id = $3, lease_until = NULL,
                  lease_token = NULL, unsure_providers = '{}',
                  next_provider = NULL, tried_providers = array_append(tried_providers, $2), sent_at = now(), updated_at = now()
           WHERE message_id = $1 AND status = 'sending'""",
        message_id, provider, provider_message_id,
    )


async def extend_lease(conn: asyncpg.Connection, message_id: uuid.UUID, *, token: uuid.UUID, until: datetime, reason: str) -> bool:
    """Keep a message `sending` (so the next round reconciles it again, never sends it blindly);
    only by the sender holding the lease."""
    return bool(await conn.fetchval(
        """UPDATE sms_messages SET lease_until = $3, last_error = $4, updated_at = now()
           WHERE message_id = $1 AND lease_token = $2 AND status = 'sending' RETURNING true""",
        message_id, token, until, reason,
    ))


async def retry_later(
    conn: asyncpg.Connection, message_id: uuid.UUID, *, at: datetime, error: str, next_provider: str | None,
    token: uuid.UUID | None = None,
) -> bool:
    """Back to `pending` until `at`. From the sender (`token`): only while it holds the lease, and
    every provider it called answered (no provider may have it: `unsure_providers` emptied)."""
    return bool(await conn.fetchval(
        """UPDATE sms_messages SET status = 'pending', not_before = $2, last_error = $3, next_provider = $4,
                  lease_until = NULL, lease_token = NULL,
                  unsure_providers = CASE WHEN $5::uuid IS NULL THEN unsure_providers ELSE '{}' END, updated_at = now()
           WHERE message_id = $1 AND ($5::uuid IS NULL OR (lease_token = $5 AND status = 'sending')) RETURNING true""",
        message_id, at, error, next_provider, token,
    ))


async def leased_message(conn: asyncpg.Connection, message_id: uuid.UUID, *, token: uuid.UUID) -> asyncpg.Record | None:
    """The row, locked, if this sender (`token`) still holds it; call inside a transaction."""
    return await conn.fetchrow(
        "SELECT * FROM sms_messages WHERE message_id = $1 AND lease_token = $2 AND status = 'sending' FOR UPDATE",
        message_id, token,
    )


def provider_ref(message: asyncpg.Record | dict[str, Any]) -> str:
    """What the provider keeps of a message as ours (OutId / SessionContext) and reports in its
    receipts: our message id, and for a resend after the n-th failed delivery `<id>-r<n>`: each
    delivery attempt is its own record at the provider, so asking about the resend never finds
    the earlier, failed one."""
    failures = int(message["delivery_failures"] or 0)
    return str(message["message_id"]) if failures == 0 else f"{message['message_id']}-r{failures}"


def _message_id_of_ref(ref: str) -> uuid.UUID | None:
    base, sep, attempt = ref.rpartition("-r")
    try:
        return uuid.UUID(base if sep and attempt.isdigit() else ref)
    except ValueError:
        return None


async def message_for_receipt(conn: asyncpg.Connection, message_id: str) -> asyncpg.Record | None:
    """A receipt names our reference (`provider_ref`: OutId / SessionContext) or the provider's id."""
    ours = _message_id_of_ref(message_id)
    return await conn.fetchrow(
        "SELECT * FROM sms_messages WHERE message_id = $1 OR provider_message_id = $2 FOR UPDATE", ours, message_id
    )


async def accepted_without_receipt(conn: asyncpg.Connection, providers: list[str]) -> list[asyncpg.Record]:
    """Messages these providers accepted whose delivery receipt has not arrived (yet), with the
    sealed mobile of their application's contact."""
    return await conn.fetch(
        """SELECT m.message_id, m.delivery_failures, m.provider, m.application_no, c.mobile_sealed
           FROM sms_messages m JOIN contacts c USING (application_no)
           WHERE m.status = 'accepted' AND m.provider = ANY($1::text[])""",
        providers,
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


async def erase_personal_data(conn: asyncpg.Connection, program: str, *, actor: str) -> dict[str, Any]:
    """`subsidy retention run`: the program's sealed contact numbers and their keyed hashes erased,
    one audit row; the SMS log (masked numbers, notices, outcomes) stays for the audit."""
    async with conn.transaction():
        contacts = await conn.fetchval(
            """WITH erased AS (
                   UPDATE contacts SET mobile_sealed = '{}'::jsonb, mobile_hash = ''
                   WHERE program = $1 AND mobile_sealed <> '{}'::jsonb RETURNING 1)
               SELECT count(*) FROM erased""",
            program,
        )
        done = {"program": program, "contacts": contacts}
        if contacts:
            await conn.execute(
                "INSERT INTO audit_log (actor, action, detail) VALUES ($1, 'retention.erase_personal_data', $2::jsonb)",
                actor, json.dumps(done),
            )
    return done
