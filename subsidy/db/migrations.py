"""Schema migrations, one schema per service.

Each service owns `services/<name>/migrations/NNN_description.sql` (versions 100 and up), applied
in order into the PostgreSQL schema of the same name, after the platform's shared migrations
(`subsidy/db/shared_migrations/`, versions below 100: inbox, outbox, audit log), which every
service schema gets. All are and recorded in `<schema>.schema_migrations` with a checksum.
A transaction-scoped advisory lock serialises concurrent migrators (several replicas starting at
once); an applied file whose text changed afterwards is an error, never silently re-run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
SHARED_DIR = Path(__file__).resolve().parent / "shared_migrations"
FIRST_SERVICE_VERSION = 100
SERVICE_SCHEMAS = ("intake", "review", "notify")
_FILE = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    schema: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _read(schema: str, directory: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")) if directory.is_dir() else []:
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_description.sql")
        found.append(Migration(schema, int(match.group(1)), match.group(2), path.read_text()))
    return found


def discover(schema: str, directory: Path | None = None) -> list[Migration]:
    """The shared migrations, then the service's own, in version order."""
    shared = _read(schema, SHARED_DIR)
    own = _read(schema, directory or SERVICES_DIR / schema / "migrations")
    if any(m.version >= FIRST_SERVICE_VERSION for m in shared) or any(m.version < FIRST_SERVICE_VERSION for m in own):
        raise MigrationError(f"{schema}: shared migrations are numbered below {FIRST_SERVICE_VERSION}, a service's from it up")
    found = sorted(shared + own, key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"{schema}: two migrations share a version number")
    return found


async def migrate(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> int:
    """Apply the pending migrations of one schema; returns how many were applied."""
    applied_now = 0
    async with conn.transaction():
        # One lock per schema, held to the end of the transaction.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('subsidy.migrations.' || $1))", schema)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row["version"]: row["checksum"]
            for row in await conn.fetch(f'SELECT version, checksum FROM "{schema}".schema_migrations')
        }
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{schema} migration {migration.version:03d}_{migration.name} was changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
            await conn.execute(migration.sql)
            await conn.execute(
                f'INSERT INTO "{schema}".schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now += 1
    return applied_now


async def migrate_all(database_url: str, schemas: tuple[str, ...] = SERVICE_SCHEMAS) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        total = 0
        for schema in schemas:
            total += await migrate(conn, schema, discover(schema))
        return total
    finally:
        await conn.close()
