"""The materials an application must upload, from the batch's `[materials]` checklist and the
application's own facts (LG 四(一), 四(二); SZ per its checklist). A plain function of data.

Conditions (`when`): `always`; `is_branch` (applicant.is_branch); `ethics_sensitive`
(declarations.ethics_sensitive); `any_cac_filed` (a contract's model has a CAC filing number);
`any_assessed_not_filed` (a contract's model has a security assessment and no filing number);
`is_consortium` (consortium.is_consortium).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from subsidy.programs.batch import Material, Materials


def _contracts(facts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in facts.get("model_contracts") or () if isinstance(c, Mapping)]


def _filed(contract: Mapping[str, Any]) -> bool:
    return bool(str(contract.get("cac_filing_no") or "").strip())


CONDITIONS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "always": lambda facts: True,
    "is_branch": lambda facts: bool((facts.get("applicant") or {}).get("is_branch")),
    "ethics_sensitive": lambda facts: bool((facts.get("declarations") or {}).get("ethics_sensitive")),
    "any_cac_filed": lambda facts: any(_filed(c) for c in _contracts(facts)),
    "any_assessed_not_filed": lambda facts: any(c.get("security_assessment") and not _filed(c) for c in _contracts(facts)),
    "is_consortium": lambda facts: bool((facts.get("consortium") or {}).get("is_consortium")),
}


def applicable_materials(materials: Materials, facts: Mapping[str, Any]) -> tuple[Material, ...]:
    """The checklist entries that apply to this application (required or for reference)."""
    return tuple(m for m in materials.checklist if CONDITIONS[m.when](facts))


def missing_materials(materials: Materials, facts: Mapping[str, Any]) -> tuple[Material, ...]:
    """Required entries to upload online that the application's `materials[]` does not contain."""
    have = {m.get("kind") for m in facts.get("materials") or () if isinstance(m, Mapping)}
    return tuple(m for m in applicable_materials(materials, facts) if m.required and m.online and m.kind not in have)
