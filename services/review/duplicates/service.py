"""Duplicate and multi-source claims, wired (LG 三(一)4, SZ 03(四)): on each submission recorded,
the application's claim (its invoices, contracts with their suppliers, product, applicant and
declarations; `detect.claim_from_facts`) is kept, and detection runs across every stored claim of
both programs (`detect.find_duplicates`). The flags are kept per application, linking to the
others (review.duplicate_flags), shown in the application view and acknowledged by a reviewer
(audited). Nothing is rejected automatically.

Detection holds a transaction-scoped advisory lock, so two submissions recorded at once never each
miss the other. It reads every claim each time (each parsed once per process, its keys normalised
once): at the programs' scale (thousands of applications a batch) that is milliseconds; an index by
key would replace it if that ever changes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import asyncpg
import structlog

from services.review import repository
from services.review.duplicates.detect import Claim, claim_from_facts, find_duplicates
from subsidy.contracts.platform_events import SubmissionRecorded

log = structlog.get_logger(__name__)

KIND_NAMES_ZH = {
    "same_invoice": "同一发票",
    "same_contract": "同一合同",
    "same_product": "同一产品",
    "cross_program_applicant": "同一单位申报多个专项",
}


async def record_claim(conn: asyncpg.Connection, event: SubmissionRecorded) -> None:
    """Keep the version's claim and refresh the flags of every application concerned (call in the
    submission's inbox transaction)."""
    claim = claim_from_facts(event.program, event.application_no, event.facts)
    await repository.store_claim(conn, event.application_no, event.program, event.version, claim.model_dump(mode="json"))
    await detect(conn)


# Stored claims never change (a new version is a new claim), and detection reads every one of them on
# each submission: each is parsed once per process, by its JSON text (Claim is frozen, so shared).
# Parsing all of them each time was a tenth of review's CPU in the lifecycle benchmark, growing with
# every application the stack had seen.
PARSED_CACHE = 100_000


@lru_cache(maxsize=PARSED_CACHE)
def _parsed(text: str) -> Claim:
    return Claim.model_validate_json(text)


async def detect(conn: asyncpg.Connection) -> None:
    claims = [_parsed(text) for text in await repository.all_claims(conn)]
    found = find_duplicates(claims)
    flagged_before = await repository.flagged_applications(conn)
    concerned = {no for no, flags in found.items() if flags} | flagged_before
    await repository.replace_flags(conn, {
        no: [flag.model_dump(mode="json") for flag in found.get(no, ())] for no in sorted(concerned)
    })
    log.info("duplicate detection", claims=len(claims), flagged=sum(1 for f in found.values() if f))


def flag_view(row: Any, local: Any) -> dict[str, Any]:
    others = json.loads(row["others"])
    return {
        "flag_id": row["id"],
        "kind": row["kind"],
        "kind_name": KIND_NAMES_ZH.get(row["kind"], row["kind"]),
        "clause": row["clause"],
        "key": row["key"],
        "message": row["message"],
        "others": [{"program": o["program"], "application_no": o["application_no"], "applicant_uscc": o["applicant_uscc"],
                    "applicant_name": o.get("applicant_name", ""), "declarations": o.get("declarations", {})} for o in others],
        "acknowledged": row["acknowledged_by"] is not None,
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": local(row["acknowledged_at"]),
        "note": row["note"],
        "flagged_at": local(row["flagged_at"]),
    }
