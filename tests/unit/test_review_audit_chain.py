"""The audit chain's hashing (services/review/audit/chain.py), without servers."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from services.review import repository
from services.review.audit.chain import GENESIS, AuditEntry, canonical, entry_hash, masked

ENTRY = AuditEntry(
    occurred_at=datetime(2026, 1, 5, 2, 3, 4, 567890, tzinfo=UTC), subject="lg-rev-01", role="lg_online_reviewer",
    action="decide_online_review", program="LG-AI-MODEL-2025", application_no="LG2025-000123",
    input={"decision": "return", "reasons": ["缺少审计报告"], "resubmit_by": "2026-01-09"}, outcome="accepted",
    reason=None, request_id="req-1",
)


def test_the_hash_covers_the_previous_hash_and_the_canonical_content() -> None:
    expected = hashlib.sha256(GENESIS + canonical(1, ENTRY)).digest()
    assert entry_hash(GENESIS, 1, ENTRY) == expected and len(expected) == 32


def test_any_change_of_content_seq_or_previous_hash_changes_the_hash() -> None:
    base = entry_hash(GENESIS, 7, ENTRY)
    changed = [
        replace(ENTRY, subject="lg-rev-02"), replace(ENTRY, role="auditor"), replace(ENTRY, action="decide_back_office_review"),
        replace(ENTRY, program="SZ-GOVAI-SCENARIO-2025"), replace(ENTRY, application_no="LG2025-000124"),
        replace(ENTRY, input={**ENTRY.input, "decision": "approve"}), replace(ENTRY, outcome="refused"),
        replace(ENTRY, reason="wrong_state"), replace(ENTRY, request_id="req-2"),
        replace(ENTRY, occurred_at=ENTRY.occurred_at + timedelta(microseconds=1)),
    ]
    assert all(entry_hash(GENESIS, 7, c) != base for c in changed)
    assert entry_hash(GENESIS, 8, ENTRY) != base
    assert entry_hash(b"\x01" * 32, 7, ENTRY) != base


def test_the_serialization_is_canonical_key_order_and_time_zone_do_not_matter() -> None:
    reordered = replace(ENTRY, input=dict(reversed(list(ENTRY.input.items()))))
    shanghai = replace(ENTRY, occurred_at=ENTRY.occurred_at.astimezone(timezone(timedelta(hours=8))))
    assert canonical(1, reordered) == canonical(1, ENTRY) == canonical(1, shanghai)
    assert "缺少审计报告".encode() in canonical(1, ENTRY)  # UTF-8, not \\u escapes
    assert b'"occurred_at":"2026-01-05T02:03:04.567890+00:00"' in canonical(1, ENTRY)


# --- no ID or mobile number enters the chain unmasked ------------------------------------------

MOBILE, ID_NUMBER = "13800138000", "11010519491231002X"
TELLING = replace(ENTRY, input={"criteria": {"practicality": {"points": 28, "justification": f"已电话联系 {MOBILE} 核实，法人身份证 {ID_NUMBER}"}},
                                "note": f"联系人 {MOBILE}", "award_fen": 13_900_000_000},
                  reason=f"invalid_input: 联系人 {MOBILE}")


class _RecordingConnection:
    """A transaction's connection for `append_audit`: an empty chain, and the INSERT's arguments kept."""

    def __init__(self) -> None:
        self.inserted: tuple[Any, ...] = ()

    def is_in_transaction(self) -> bool:
        return True

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return 1 if "nextval" in sql else None

    async def execute(self, sql: str, *args: Any) -> None:
        if sql.lstrip().startswith("INSERT"):
            self.inserted = args


def test_the_writer_masks_input_and_reason_and_hashes_what_it_stores() -> None:
    conn = _RecordingConnection()
    seq = asyncio.run(repository.append_audit(conn, TELLING))  # type: ignore[arg-type]
    (_, _, _, _, _, _, _, stored_input, _, stored_reason, _, prev, stored_hash) = conn.inserted
    assert MOBILE not in stored_input + stored_reason and ID_NUMBER not in stored_input
    assert "138****8000" in stored_input and "1101**********002X" in stored_input and "138****8000" in stored_reason
    assert json.loads(stored_input)["award_fen"] == 13_900_000_000  # amounts stay numbers
    # verify_chain recomputes the hash from the row as read back: the masked content
    as_read = replace(TELLING, input=json.loads(stored_input), reason=stored_reason)
    assert stored_hash == entry_hash(prev, seq, as_read)


def test_masking_a_masked_entry_changes_nothing() -> None:
    once = masked(TELLING)
    assert masked(once) == once and masked(ENTRY) == ENTRY
