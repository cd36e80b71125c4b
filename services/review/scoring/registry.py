"""The expert registry (the reference kind `experts`: expert id = the expert's subject at the issuer,
organisation, its USCC, declared affiliations) and each expert's conflicts of interest with an
application (rules/expert_conflicts.py).

`register_experts(conn, content)` parses an `experts` CSV (reference/importer.py, refused whole at its
first error) and replaces review.expert_registry with it: the CLI's `subsidy reference import experts`
calls it. An expert absent from review.expert_registry is looked up in the latest imported `experts`
list (the reference lists' table), when there is one.
"""

from __future__ import annotations

import json

import asyncpg

from services.review import repository
from services.review.reference.importer import Expert, ReferenceImport, import_reference


async def register_experts(conn: asyncpg.Connection, content: bytes) -> ReferenceImport:
    imported = import_reference("experts", content)
    await repository.replace_expert_registry(conn, [e.model_dump(mode="json") for e in imported.rows], imported.version)
    return imported


async def expert(conn: asyncpg.Connection, expert_id: str) -> Expert | None:
    row = await repository.registered_expert(conn, expert_id)
    if row is not None:
        return Expert(expert_id=row["expert_id"], name=row["name"], organisation=row["organisation"],
                      organisation_uscc=row["organisation_uscc"], fields=tuple(json.loads(row["fields"])),
                      affiliations=tuple(json.loads(row["affiliations"])))
    imported = await repository.latest_reference(conn, "experts")
    if imported is None:
        return None
    return next((Expert.model_validate(r) for r in imported[1] if r.get("expert_id") == expert_id), None)
