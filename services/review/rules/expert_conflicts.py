"""Conflicts of interest of an expert with an application (SZ expert review; issue 11): an expert is
never assigned to a product of their own organisation (the applicant or a consortium member, by USCC,
or by name when the registry gives no USCC), nor of a unit they declared an affiliation with.
`expert_conflicts` lists the reasons (Chinese); an empty tuple means no conflict is known."""

from __future__ import annotations

from collections.abc import Sequence

from services.review.duplicates.normalize import normalize_product_name, normalize_uscc
from services.review.reference.importer import Expert


def expert_conflicts(expert: Expert, units: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """`units`: (USCC, name) of the applicant and of every consortium member."""
    reasons = []
    own_uscc = normalize_uscc(expert.organisation_uscc)
    own_name = normalize_product_name(expert.organisation)
    affiliations = {normalize_uscc(a) for a in expert.affiliations}
    for uscc, name in units:
        key = normalize_uscc(uscc)
        if (own_uscc and key == own_uscc) or (not own_uscc and own_name and normalize_product_name(name) == own_name):
            reasons.append(f"专家 {expert.expert_id} 的工作单位 {expert.organisation} 即申报（联合体）单位 {name or uscc}")
        elif key and key in affiliations:
            reasons.append(f"专家 {expert.expert_id} 声明与 {name or uscc}（{uscc}）存在关联")
    return tuple(reasons)


def units_of(facts: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """(USCC, name) of a Shenzhen application's applicant and consortium members (CONTRACTS.md payload)."""
    applicant = facts.get("applicant") or {}
    units = [(str(applicant.get("uscc") or ""), str(applicant.get("name") or ""))]
    for member in (facts.get("consortium") or {}).get("members") or ():
        if isinstance(member, dict):
            units.append((str(member.get("uscc") or ""), str(member.get("name") or "")))
    return units
