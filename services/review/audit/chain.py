"""The audit log no one can rewrite: review.audit_chain, one row per decision taken through the API
and per refused attempt, each row's hash covering its content and the previous row's hash.

- `entry_hash(prev_hash, entry)`: SHA-256 over `prev_hash` followed by the canonical serialization
  of the row (`canonical`: JSON, keys sorted, no spaces, UTF-8, times in UTC ISO 8601 with
  microseconds). The first row's `prev_hash` is 32 zero bytes (`GENESIS`).
- Rows are appended by `repository.append_audit` inside the caller's transaction, under a
  transaction-scoped advisory lock, so appends are serialized and the chain never forks.
- A row is append-only for ever, so no ID or mobile number may enter one unmasked: the writer masks
  the row's `input` and `reason` (`masked`) before it hashes and stores them, whatever its caller
  passed (the routes mask the request bodies already; this is the last line of defence). The hash
  covers what is stored; rows written before are never rewritten and verify as they are.
- The database refuses UPDATE, DELETE and TRUNCATE (triggers, migration 104); an alteration by
  someone who can switch triggers off is found by `verify_chain`, which recomputes every hash in
  seq order and names the first row that does not match (`subsidy audit verify`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from subsidy.identifiers import mask_personal_data, mask_personal_data_in

GENESIS = bytes(32)
VERIFY_BATCH = 2000


@dataclass(frozen=True)
class AuditEntry:
    """What one audit row says (its seq, hashes aside)."""

    occurred_at: datetime
    subject: str
    role: str
    action: str
    program: str | None
    application_no: str | None
    input: dict[str, Any]
    outcome: str  # 'accepted' | 'refused'
    reason: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class ChainReport:
    count: int  # rows checked (all of them when intact; up to and including the bad one otherwise)
    first_bad_seq: int | None
    reason: str | None

    @property
    def intact(self) -> bool:
        return self.first_bad_seq is None


def masked(entry: AuditEntry) -> AuditEntry:
    """`entry` as the chain may keep it: ID and mobile numbers in its input (free text an official
    or the public wrote: a justification, a reason, a note, an objection's organisation) and in its
    reason (a refusal may quote what was sent) masked by the same rules as logs and dead letters.
    Masking a masked entry changes nothing, so a caller that masked already is not harmed."""
    return replace(entry, input=mask_personal_data_in(entry.input),
                   reason=mask_personal_data(entry.reason) if entry.reason is not None else None)


def canonical(seq: int, entry: AuditEntry) -> bytes:
    """The bytes a row's hash covers (besides the previous hash). Stable across a round trip
    through PostgreSQL: jsonb input is re-serialized the same way, times are UTC microseconds."""
    content = {
        "seq": seq,
        "occurred_at": entry.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "subject": entry.subject,
        "role": entry.role,
        "action": entry.action,
        "program": entry.program,
        "application_no": entry.application_no,
        "input": entry.input,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "request_id": entry.request_id,
    }
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(prev_hash: bytes, seq: int, entry: AuditEntry) -> bytes:
    return hashlib.sha256(prev_hash + canonical(seq, entry)).digest()


async def verify_chain(conn: asyncpg.Connection) -> ChainReport:
    """Walk review.audit_chain in seq order, recomputing each hash; the first row whose stored
    previous hash or own hash does not match is named. Works whatever the connection's search_path."""
    from services.review import repository

    prev = GENESIS
    count = 0
    after = 0
    while True:
        rows = await repository.audit_rows_after(conn, after, VERIFY_BATCH)
        if not rows:
            return ChainReport(count=count, first_bad_seq=None, reason=None)
        for seq, stored_prev, stored_hash, entry in rows:
            count += 1
            if stored_prev != prev:
                return ChainReport(count, seq, "prev_hash does not match the previous row's hash (a row was removed or reordered)")
            if entry_hash(prev, seq, entry) != stored_hash:
                return ChainReport(count, seq, "content does not match its hash (the row was altered)")
            prev = stored_hash
            after = seq
