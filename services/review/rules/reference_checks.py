"""Checks against the lists an operator imports (services/review/reference), each finding recording
the list's version. They complement the Longgang pre-checks (../pre_checks.py), which read only the
applicant's own declarations:

- `dishonesty_finding` (LG 三(一)2): the applicant is not on the serious-dishonesty list, in effect
  on the given day (listed_on <= day <= expires_on, or no end);
- `cac_filing_finding` (LG 二(一)1): each filing number a contract gives is in the CAC registry.

`needs_person` whenever the list says otherwise or was never imported: the reviewer decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from services.review.duplicates.normalize import normalize_contract_no, normalize_uscc
from services.review.reference.importer import CacFiling, DishonestyEntry
from services.review.rules.findings import Finding


def dishonesty_finding(
    applicant_uscc: str, entries: Sequence[DishonestyEntry] | None, version: str | None, *, on: date, clause: str = "三(一)2"
) -> Finding:
    if entries is None:
        return Finding(rule="not_on_dishonesty_list", clause=clause, status="needs_person",
                       explanation="尚未导入严重失信主体名单，请人工查询", evidence={"uscc": applicant_uscc})
    uscc = normalize_uscc(applicant_uscc)
    mine = [e for e in entries if normalize_uscc(e.uscc) == uscc]
    in_effect = [e for e in mine if e.listed_on <= on and (e.expires_on is None or on <= e.expires_on)]
    evidence: dict[str, Any] = {"uscc": applicant_uscc, "on": on.isoformat(), "entries": [e.model_dump(mode="json") for e in mine]}
    if in_effect:
        entry = in_effect[0]
        until = entry.expires_on.isoformat() if entry.expires_on else "未注明"
        return Finding(rule="not_on_dishonesty_list", clause=clause, status="needs_person", evidence=evidence, reference_version=version,
                       explanation=f"申报单位在严重失信主体名单中（{entry.authority or '认定部门未注明'}，{entry.listed_on.isoformat()} 列入，有效期至 {until}），请人工核实")
    note = "（曾列入，已过有效期）" if mine else ""
    return Finding(rule="not_on_dishonesty_list", clause=clause, status="passed", evidence=evidence, reference_version=version,
                   explanation=f"申报单位不在 {on.isoformat()} 有效的严重失信主体名单中{note}")


def cac_filing_finding(
    contracts: Sequence[Mapping[str, Any]], filings: Sequence[CacFiling] | None, version: str | None, *, clause: str = "二(一)1"
) -> Finding:
    numbers = [(str(c.get("contract_no") or ""), str(c.get("cac_filing_no") or "").strip()) for c in contracts]
    numbers = [(contract, filing) for contract, filing in numbers if filing]
    evidence: dict[str, Any] = {"filings": [{"contract_no": c, "cac_filing_no": f} for c, f in numbers]}
    if not numbers:
        return Finding(rule="cac_filing_registered", clause=clause, status="passed", evidence=evidence, reference_version=version,
                       explanation="各合同均未以网信办备案为依据（以等级保护测评为依据的，另行核对测评证明）")
    if filings is None:
        return Finding(rule="cac_filing_registered", clause=clause, status="needs_person", evidence=evidence,
                       explanation="尚未导入生成式人工智能服务备案清单，请人工核对备案号")
    registry = {normalize_contract_no(f.filing_no): f for f in filings}
    found = {c: registry.get(normalize_contract_no(f)) for c, f in numbers}
    evidence["registry"] = {c: (f.model_dump(mode="json") if f else None) for c, f in found.items()}
    missing = [f"合同 {c} 的备案号 {f}" for c, f in numbers if found[c] is None]
    if missing:
        return Finding(rule="cac_filing_registered", clause=clause, status="needs_person", evidence=evidence, reference_version=version,
                       explanation="、".join(missing) + " 不在生成式人工智能服务备案清单中，请人工核实")
    shown = "；".join(f"合同 {c}：{found[c].model_name}（{found[c].provider_name}，{found[c].filed_on.isoformat()} 备案）"  # type: ignore[union-attr]
                     for c, _ in numbers)
    return Finding(rule="cac_filing_registered", clause=clause, status="passed", evidence=evidence, reference_version=version,
                   explanation=f"备案号均在生成式人工智能服务备案清单中：{shown}")
