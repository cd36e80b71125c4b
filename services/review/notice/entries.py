"""Rows of a notice list as people read them: enterprise, project or product, tier, amount in 元
(two decimals, from integer fen), and the totals; the difference between two versions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from subsidy.programs import programs

SHENZHEN = "SZ-GOVAI-SCENARIO-2025"
TIER_ZH = {1: "一档", 2: "二档", 3: "三档"}


def yuan(fen: int) -> str:
    """150000000 -> '1,500,000.00' (the unit is in the column's header)."""
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole:,}.{cents:02d}"


def has_tiers(program: str) -> bool:
    return program == SHENZHEN


def project_of(facts: Mapping[str, Any]) -> str:
    """The project (Longgang: the models called) or product (Shenzhen) an entry is for."""
    product = facts.get("product") or {}
    if product.get("name"):
        return str(product["name"])
    project = facts.get("project") or {}
    if project.get("name"):
        return str(project["name"])
    models = [str(c.get("model_name")) for c in facts.get("model_contracts") or () if c.get("model_name")]
    return "调用模型：" + "、".join(dict.fromkeys(models)) if models else ""


def enterprise_of(facts: Mapping[str, Any]) -> str:
    return str((facts.get("applicant") or {}).get("name") or "")


def entry_view(row: Mapping[str, Any], number: int) -> dict[str, Any]:
    return {
        "no": number,
        "application_no": row["application_no"],
        "enterprise_name": row["enterprise_name"],
        "project": row["project"],
        "tier": row["tier"],
        "tier_name": TIER_ZH.get(row["tier"]) if row["tier"] is not None else None,
        "award_fen": row["award_fen"],
        "award_yuan": yuan(row["award_fen"]),
    }


def list_view(program: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    entries = [entry_view(r, n) for n, r in enumerate(rows, start=1)]
    total = sum(e["award_fen"] for e in entries)
    return {
        "program": program,
        "program_name": programs()[program].name,
        "has_tiers": has_tiers(program),
        "entries": entries,
        "count": len(entries),
        "total_award_fen": total,
        "total_award_yuan": yuan(total),
    }


def diff(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """What changed from one version to the next: entries added, removed, and changed (amount or tier)."""
    old = {r["application_no"]: r for r in before}
    new = {r["application_no"]: r for r in after}

    def short(r: Mapping[str, Any]) -> dict[str, Any]:
        return {"application_no": r["application_no"], "enterprise_name": r["enterprise_name"], "tier": r["tier"],
                "award_fen": r["award_fen"], "award_yuan": yuan(r["award_fen"])}

    changed = [
        {"application_no": no, "enterprise_name": new[no]["enterprise_name"], "before": short(old[no]), "after": short(new[no])}
        for no in sorted(old.keys() & new.keys())
        if (old[no]["award_fen"], old[no]["tier"]) != (new[no]["award_fen"], new[no]["tier"])
    ]
    return {
        "added": [short(new[no]) for no in sorted(new.keys() - old.keys())],
        "removed": [short(old[no]) for no in sorted(old.keys() - new.keys())],
        "changed": changed,
    }


def mask_phone(phone: str) -> str:
    """A phone number as it may be kept and shown: the first 3 and last 4 digits (138****5678)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
