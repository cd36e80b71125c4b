"""`subsidy retention run` on the real PostgreSQL (issue 14, defect 8d): a program's personal data
erased once its batch closed long enough ago, what the audit needs kept, each erasure audited."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

import subsidy.programs as program_config
from cli.retention import erase_due
from subsidy.programs import Retention

pytestmark = pytest.mark.integration
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_batch_is_due_a_configured_time_after_it_closed_and_never_while_open() -> None:
    closed = datetime(2026, 6, 30, 18, tzinfo=SHANGHAI)
    assert not Retention().erase_due(closed + timedelta(days=10_000))  # not closed: never
    retention = Retention(batch_closed_at=closed, erase_personal_data_after_days=180)
    assert not retention.erase_due(closed + timedelta(days=179))
    assert retention.erase_due(closed + timedelta(days=180))


async def test_retention_erases_sealed_numbers_and_hashes_keeps_the_rest_and_audits(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    code = f"ZZ-RET-{uuid.uuid4().hex[:8].upper()}"  # a program of its own: nothing else on the stack is touched
    app = f"ZZ2026-{uuid.uuid4().int % 1_000_000:06d}"
    sealed = {"applicant.contact.mobile": {"kid": "k", "nonce": "n", "ct": "c"}}
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            """INSERT INTO intake.application_versions (application_no, version, program, event_id, event_source, submitted_at, applicant_uscc, payload, sealed)
               VALUES ($1, 1, $2, $3, 'urn:portal:longgang-qyfw', now(), '91440300MA5FXXXX0X', '{"project": "x"}'::jsonb, $4::jsonb)""",
            app, code, f"evt-{uuid.uuid4()}", json.dumps(sealed))
        await conn.execute("INSERT INTO intake.personal_lookup VALUES ($1, 1, 'applicant.contact.mobile', 'mobile', 'abc')", app)
        await conn.execute(
            """INSERT INTO notify.contacts (application_no, program, version, applicant_name, mobile_sealed, mobile_hash, mobile_masked)
               VALUES ($1, $2, 1, '某公司', $3::jsonb, 'hash', '138****8000')""", app, code, json.dumps(sealed["applicant.contact.mobile"]))

        closed = datetime(2026, 1, 31, 18, tzinfo=SHANGHAI)
        program = program_config.programs()["LG-AI-MODEL-2025"].model_copy(
            update={"code": code, "retention": Retention(batch_closed_at=closed, erase_personal_data_after_days=30)})
        monkeypatch.setattr(program_config, "programs", lambda: {code: program})

        assert await erase_due(now=closed + timedelta(days=29), database_url=stack.database_url) == []  # not yet
        assert await erase_due(now=closed + timedelta(days=30), dry_run=True, database_url=stack.database_url) == [
            {"program": code, "due": True, "dry_run": True}]
        assert await conn.fetchval("SELECT sealed FROM intake.application_versions WHERE application_no = $1", app) != "{}"

        done = await erase_due(now=closed + timedelta(days=30), actor="operator:test", database_url=stack.database_url)
        assert {(line["schema"], line.get("versions", line.get("contacts"))) for line in done} == {("intake", 1), ("notify", 1)}
        again = await erase_due(now=closed + timedelta(days=31), database_url=stack.database_url)
        assert [line.get("versions", line.get("contacts")) for line in again] == [0, 0]

        version = await conn.fetchrow("SELECT sealed::text, applicant_uscc, payload::text FROM intake.application_versions WHERE application_no = $1", app)
        assert version["sealed"] == "{}" and version["applicant_uscc"] == "91440300MA5FXXXX0X" and "project" in version["payload"]
        assert await conn.fetchval("SELECT count(*) FROM intake.personal_lookup WHERE application_no = $1", app) == 0
        contact = await conn.fetchrow("SELECT mobile_sealed::text, mobile_hash, mobile_masked FROM notify.contacts WHERE application_no = $1", app)
        assert (contact["mobile_sealed"], contact["mobile_hash"], contact["mobile_masked"]) == ("{}", "", "138****8000")
        for schema in ("intake", "notify"):
            audited = await conn.fetch(
                f"SELECT actor, detail FROM {schema}.audit_log WHERE action = 'retention.erase_personal_data' AND detail->>'program' = $1", code)
            assert [row["actor"] for row in audited] == ["operator:test"], schema
    finally:
        await conn.execute("DELETE FROM intake.personal_lookup WHERE application_no = $1", app)
        await conn.execute("DELETE FROM intake.application_versions WHERE application_no = $1", app)
        await conn.execute("DELETE FROM notify.contacts WHERE application_no = $1", app)
        await conn.close()
