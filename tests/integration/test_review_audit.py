"""The audit chain on the real stack: every refused attempt through the API is a row; the database
refuses UPDATE, DELETE and TRUNCATE; a row altered by someone who switches the triggers off is
named by `subsidy audit verify`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from services.review.audit.chain import verify_chain
from subsidy.identity.claims import StaffRole
from tests.support.review_world import LG, Official, application_no, review_world

pytestmark = [pytest.mark.integration, pytest.mark.shared_processes]

REVIEWER = Official("lg-rev-audit", (StaffRole.LG_ONLINE_REVIEWER,), (LG,))


def audit_verify(stack) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "audit", "verify", "--run-dir", str(stack.run_dir)],
                          capture_output=True, text=True, timeout=60)


async def test_refused_attempts_are_chained_and_an_altered_row_is_named(stack, tmp_path: Path) -> None:
    unknown = [application_no("LG") for _ in range(3)]
    async with review_world(stack, tmp_path, shared=True) as w:
        answers = [await w.post(REVIEWER, f"/api/applications/{app}/decisions", {"decision": "approve"}) for app in unknown]
        no_key = await w.post(REVIEWER, f"/api/applications/{unknown[0]}/decisions", {"decision": "approve"}, key=None)
        rows = await w.database.fetch(
            "SELECT seq, outcome, reason, subject, input::text AS input FROM review.audit_chain WHERE application_no = ANY($1) ORDER BY seq",
            unknown)

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].json()["code"] == "not_found" and answers[0].json()["message"] == "未找到该申报"
    assert no_key.status_code == 400 and no_key.json()["code"] == "idempotency_key_required"
    assert [(r["outcome"], r["subject"], json.loads(r["input"])) for r in rows] == [("refused", REVIEWER.subject, {"decision": "approve"})] * 3
    assert all(r["reason"].startswith("not_found") for r in rows)

    conn = await asyncpg.connect(stack.database_url)
    try:
        intact = await verify_chain(conn)
        assert intact.intact and intact.count >= 3
        target = rows[1]["seq"]
        for statement in (f"UPDATE review.audit_chain SET reason = 'nothing happened' WHERE seq = {target}",
                          f"DELETE FROM review.audit_chain WHERE seq = {target}", "TRUNCATE review.audit_chain"):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute(statement)
        assert audit_verify(stack).returncode == 0

        # A superuser switches the triggers off for the session and rewrites a row.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(f"UPDATE review.audit_chain SET reason = 'nothing happened' WHERE seq = {target}")
        broken = await verify_chain(conn)
        cli = audit_verify(stack)
        # Put it back (same way), so the shared stack's chain is whole for later tests.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(f"UPDATE review.audit_chain SET reason = $1 WHERE seq = {target}", rows[1]["reason"])
        repaired = await verify_chain(conn)
    finally:
        await conn.close()

    assert broken.first_bad_seq == target and "altered" in (broken.reason or "")
    assert cli.returncode != 0 and f"row {target}" in cli.stderr and json.loads(cli.stdout)["first_bad_seq"] == target
    assert repaired.intact
