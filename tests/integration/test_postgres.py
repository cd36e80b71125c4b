"""asyncpg on the real PostgreSQL, and the per-service migrations."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from subsidy.db.migrations import MigrationError, discover, migrate, migrate_all

pytestmark = pytest.mark.integration


async def test_round_trip_inside_a_transaction_and_rollback(stack) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute("CREATE TEMP TABLE t (application_no text PRIMARY KEY, amount_fen bigint NOT NULL)")
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES ($1, $2)", "LG2025-000123", 150_000_000)
            assert await conn.fetchval("SELECT amount_fen FROM t WHERE application_no = $1", "LG2025-000123") == 150_000_000
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES ($1, $2)", "LG2025-000124", 1)
                raise RuntimeError("abort")
        rows = await conn.fetch("SELECT application_no FROM t ORDER BY 1")
        assert [r["application_no"] for r in rows] == ["LG2025-000123"]
    finally:
        await conn.close()


async def test_every_service_schema_is_migrated_and_migrating_again_is_a_no_op(stack) -> None:
    assert await migrate_all(stack.database_url) == 0  # the stack applied them already
    conn = await asyncpg.connect(stack.database_url)
    try:
        for schema in ("intake", "review", "notify"):
            tables = {r["table_name"] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)}
            assert {"inbox", "outbox", "audit_log", "schema_migrations"} <= tables
    finally:
        await conn.close()


async def test_a_changed_applied_migration_is_refused(stack, tmp_path: Path) -> None:
    schema = f"t_{uuid.uuid4().hex[:8]}"
    (tmp_path / "100_first.sql").write_text("CREATE TABLE applications (application_no text PRIMARY KEY);")
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await migrate(conn, schema, discover(schema, tmp_path)) > 0
        (tmp_path / "100_first.sql").write_text("CREATE TABLE applications (id int);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, schema, discover(schema, tmp_path))
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
