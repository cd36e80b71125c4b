"""Automatic pre-checks of a Longgang application (DESIGN.md, LG lifecycle step 2), each citing its
clause of the guide (../shared/policy/longgang-2025-model-call-guide.zh.txt).

`longgang_findings` is the rule set: a plain function of a version's facts (the portal's payload as
intake stored it, without the people in it) and the enterprise's other applications. A failed check
is a finding for the online reviewer, not a decision: the lifecycle moves on to online review either
way, with the failed rules in the transition's reason. Details are Chinese: reviewers read them.

The facts reach review as `subsidy.application.submission-recorded.v1` (intake's outbox, one event
per stored version) and are kept in `review.submissions`. If the workflow asks before the event has
arrived, the activity fails retryably and Temporal asks again (RECORD_RETRY: 1 s growing to 1 min).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.review.rules.materials import applicable_materials
from subsidy.contracts.lifecycle import PreCheckFinding
from subsidy.programs.batch import LonggangPreChecks, Materials

LONGGANG = "龙岗区"
SOFTWARE_INDUSTRY_PREFIXES = ("64", "65")  # 互联网和相关服务 (64), 软件和信息技术服务业 (65): 三(二)1
MIN_ASSESSMENT_LEVEL = 3  # 等级保护测评三级及以上: 二(一)2

# Material kinds every application needs online, with the guide's item. `application_form` (四(一)1)
# is not among them: the form is printed from the platform (the watermarked form) and comes on paper.
REQUIRED_MATERIALS: dict[str, str] = {
    "business_license": "四(一)2",
    "legal_rep_id": "四(一)3",
    "project_lead_id": "四(一)4",
    "project_lead_labor_contract": "四(一)4",
    "project_lead_social_insurance_3m": "四(一)4",
    "credit_report": "四(一)5",
    "audit_reports_2y": "四(一)6",
    "tax_certificate": "四(一)7",
    "model_service_contract": "四(二)1",
    "invoices": "四(二)1",
    "bank_payment_proofs": "四(二)1",
    "tax_receipts": "四(二)1",
    "model_usage_report": "四(二)2",
}
MATERIAL_NAMES: dict[str, str] = {
    "application_form": "申报书",
    "business_license": "营业执照",
    "head_office_authorisation": "总部授权证明",
    "legal_rep_id": "法定代表人身份证复印件",
    "project_lead_id": "项目负责人身份证复印件",
    "project_lead_labor_contract": "项目负责人劳动合同",
    "project_lead_social_insurance_3m": "项目负责人近三个月社保缴纳凭证",
    "credit_report": "信用报告",
    "audit_reports_2y": "近两年财务审计报告",
    "tax_certificate": "上年度纳税证明",
    "ethics_materials": "科技伦理相关材料",
    "model_service_contract": "模型服务合同",
    "invoices": "发票",
    "bank_payment_proofs": "银行付款凭证",
    "tax_receipts": "税票",
    "model_usage_report": "模型使用报告",
    "cac_filing_proof": "生成式人工智能服务备案证明",
    "security_assessment_proof": "等级保护测评证明",
}


# --- the batch's parameters (issue 11: a batch is data) ---------------------------------------------


@dataclass(frozen=True)
class Parameters:
    """What the rules read from the batch's configuration (`[pre_checks]`, `[materials]`); the
    constants above are the 2025 values, used when a batch gives none (and held equal to the 2025
    configuration by tests/unit/test_program_batches.py)."""

    district: str = LONGGANG
    industry_code_prefixes: tuple[str, ...] = SOFTWARE_INDUSTRY_PREFIXES
    min_assessment_level: int = MIN_ASSESSMENT_LEVEL
    materials: Materials | None = None

    @classmethod
    def of(cls, pre_checks: LonggangPreChecks | None, materials: Materials | None) -> Parameters:
        if pre_checks is None:
            return cls(materials=materials)
        return cls(district=pre_checks.district, industry_code_prefixes=tuple(pre_checks.industry_code_prefixes),
                   min_assessment_level=pre_checks.min_assessment_level, materials=materials)

    def material_name(self, kind: str) -> str:
        named = {m.kind: m.name for m in self.materials.checklist} if self.materials else {}
        return named.get(kind) or MATERIAL_NAMES.get(kind, kind)


DEFAULT = Parameters()
_params: Parameters = DEFAULT  # the batch's, for the duration of one longgang_findings call


# --- the rules -----------------------------------------------------------------------------------


def longgang_findings(facts: dict[str, Any], *, other_applications: Sequence[str],
                      parameters: Parameters | None = None) -> tuple[PreCheckFinding, ...]:
    """Every pre-check of the guide on one version's facts, in the guide's order.

    `other_applications`: the numbers of this enterprise's other applications to the program.
    `parameters`: the batch's (`Parameters.of(program.pre_checks, program.materials)`); 2025's when None.
    """
    global _params
    _params = parameters or DEFAULT
    try:
        return tuple(rule(facts, other_applications) for rule in RULES)
    finally:
        _params = DEFAULT


def _finding(rule: str, clause: str, passed: bool, detail: str) -> PreCheckFinding:
    return PreCheckFinding(rule=rule, clause=clause, passed=passed, detail=detail)


def _registered_in_longgang(facts: dict[str, Any], _others: Sequence[str]) -> PreCheckFinding:
    applicant = facts.get("applicant", {})
    district = applicant.get("registered_district") or "未填"
    operating = _params.district in (applicant.get("operating_address") or "")
    return _finding(
        "registered_in_longgang", "三(一)1", district == _params.district and operating,
        f"注册地：{district}；实际经营地址{'在' if operating else '不在'}{_params.district}",
    )


def _branch_authorised(facts: dict[str, Any], _others: Sequence[str]) -> PreCheckFinding:
    applicant = facts.get("applicant", {})
    if not applicant.get("is_branch"):
        return _finding("branch_authorisation", "三(一)1", True, "非分支机构，无需总部授权")
    missing = []
    if not applicant.get("head_office_uscc"):
        missing.append("总部统一社会信用代码")
    if "head_office_authorisation" not in _material_kinds(facts):
        missing.append(MATERIAL_NAMES["head_office_authorisation"])
    return _finding(
        "branch_authorisation", "三(一)1", not missing,
        "分支机构申报，总部授权齐全" if not missing else "分支机构申报，缺少：" + "、".join(missing),
    )


def _not_seriously_dishonest(facts: dict[str, Any], _others: Sequence[str]) -> PreCheckFinding:
    listed = bool(facts.get("declarations", {}).get("serious_dishonesty_listed"))
    return _finding(
        "not_seriously_dishonest", "三(一)2", not listed,
        "申报单位声明已被列入严重失信主体名单" if listed else "申报单位声明未被列入严重失信主体名单",
    )


def _no_duplicate_application(facts: dict[str, Any], others: Sequence[str]) -> PreCheckFinding:
    problems = []
    if facts.get("declarations", {}).get("other_district_funds_for_same_item"):
        problems.append("申报单位声明同一事项已申报其他区级专项资金")
    if others:
        problems.append("同一单位在本项目下另有申报：" + "、".join(sorted(others)))
    return _finding("no_duplicate_application", "三(一)4", not problems, "；".join(problems) or "申报单位未声明同一事项获其他区级资金，本项目下无同一单位的其他申报")


def _industry_code(facts: dict[str, Any], _others: Sequence[str]) -> PreCheckFinding:
    code = str(facts.get("applicant", {}).get("industry_code") or "")
    prefixes = _params.industry_code_prefixes
    return _finding(
        "industry_code", "三(二)1", bool(code) and code.startswith(prefixes),
        f"行业代码 {code or '未填'}（须以 {' 或 '.join(prefixes)} 开头）",
    )


def _supplier_not_related(facts: dict[str, Any], _others: Sequence[str]) -> PreCheckFinding:
    applicant = facts.get("applicant", {})
    related = {*(applicant.get("related_party_usccs") or ()), applicant.get("uscc"), applicant.get("head_office_uscc")}
    related.discard(None)
    flagged = [c.get("contract_no") or "?" for c in _contracts(facts) if c.get("supplier_uscc") in related]
    return _finding(
        "supplier_not_related", "三(二)2", not flagged,
        "模型供给方均为非关联方" if not flagged else "合同 " + "、".join(flagged) + " 的模型供给方为关联方",
    )


def _model_filed_or_assessed(facts: dict[str, Any], _others: Sequence[str]) -> PreCheckFinding:
    contracts = _contracts(facts)
    unqualified = [c.get("contract_no") or "?" for c in contracts if not (_cac_filed(c) or _assessed(c))]
    if not contracts:
        return _finding("model_filed_or_assessed", "二(一)", False, "未填报模型服务合同")
    return _finding(
        "model_filed_or_assessed", "二(一)", not unqualified,
        f"每个模型均已完成生成式人工智能服务备案或{_params.min_assessment_level}级及以上等级保护测评" if not unqualified
        else "合同 " + "、".join(unqualified) + f" 的模型既无网信办备案号，也无{_params.min_assessment_level}级及以上等级保护测评",
    )


def _materials_complete(facts: dict[str, Any], _others: Sequence[str]) -> PreCheckFinding:
    have = _material_kinds(facts)
    missing = [kind for kind in required_materials(facts) if kind not in have]
    return _finding(
        "materials_complete", "四(一)、四(二)", not missing,
        "申报材料齐全" if not missing else "缺少：" + "、".join(_params.material_name(k) for k in missing),
    )


def required_materials(facts: dict[str, Any]) -> list[str]:
    """The kinds this application must upload: the batch's checklist (required, online, applying to
    these facts), or without one the 2025 list plus what its own facts call for."""
    if _params.materials is not None:
        return [m.kind for m in applicable_materials(_params.materials, facts) if m.required and m.online]
    kinds = list(REQUIRED_MATERIALS)
    if facts.get("applicant", {}).get("is_branch"):
        kinds.append("head_office_authorisation")  # 四(一)2
    if facts.get("declarations", {}).get("ethics_sensitive"):
        kinds.append("ethics_materials")  # 四(一)8
    contracts = _contracts(facts)
    if any(_cac_filed(c) for c in contracts):
        kinds.append("cac_filing_proof")  # 四(二)3(1)
    if any(_assessed(c) and not _cac_filed(c) for c in contracts):
        kinds.append("security_assessment_proof")  # 四(二)3(2)
    return kinds


def _contracts(facts: dict[str, Any]) -> list[dict[str, Any]]:
    return list(facts.get("model_contracts") or ())


def _cac_filed(contract: dict[str, Any]) -> bool:
    return bool((contract.get("cac_filing_no") or "").strip())


def _assessed(contract: dict[str, Any]) -> bool:
    assessment = contract.get("security_assessment") or {}
    return isinstance(assessment.get("level"), int) and assessment["level"] >= _params.min_assessment_level


def _material_kinds(facts: dict[str, Any]) -> set[str]:
    return {m.get("kind") for m in facts.get("materials") or () if isinstance(m, dict)}


RULES: tuple[Callable[[dict[str, Any], Sequence[str]], PreCheckFinding], ...] = (
    _registered_in_longgang,
    _branch_authorised,
    _not_seriously_dishonest,
    _no_duplicate_application,
    _industry_code,
    _supplier_not_related,
    _model_filed_or_assessed,
    _materials_complete,
)


# --- what the reviewer reads besides the finding: explanation, evidence, ruleset version ---------

# Bump when a rule, clause or threshold changes: a finding names the rules it was made under.
RULESET_VERSION = "LG-AI-MODEL-2025/rules-2025.1"

EXPLANATIONS: dict[str, str] = {
    "registered_in_longgang": "申报单位须在龙岗区注册，且实际经营地址在龙岗区（指南三(一)1）。",
    "branch_authorisation": "分支机构申报须提供总部统一社会信用代码及总部授权证明（指南三(一)1）。",
    "not_seriously_dishonest": "申报单位不得被列入严重失信主体名单（指南三(一)2）。",
    "no_duplicate_application": "同一事项不得重复申报或多头申报区级专项资金（指南三(一)4）。",
    "industry_code": "申报单位行业代码须属互联网和相关服务（64）或软件和信息技术服务业（65）（指南三(二)1）。",
    "supplier_not_related": "模型供给方不得为申报单位的关联方（指南三(二)2）。",
    "model_filed_or_assessed": "所调用模型须已完成生成式人工智能服务备案，或通过三级及以上网络安全等级保护测评（指南二(一)）。",
    "materials_complete": "申报材料须按指南四(一)、四(二)所列齐全上传。",
}


def evidence(rule: str, facts: dict[str, Any], others: Sequence[str]) -> dict[str, Any]:
    """The facts' values a rule read (enterprise facts only: no names, ID or mobile numbers)."""
    applicant = facts.get("applicant", {})
    contracts = _contracts(facts)
    match rule:
        case "registered_in_longgang":
            return {"registered_district": applicant.get("registered_district"), "operating_address": applicant.get("operating_address")}
        case "branch_authorisation":
            return {"is_branch": bool(applicant.get("is_branch")), "head_office_uscc": applicant.get("head_office_uscc"),
                    "head_office_authorisation_uploaded": "head_office_authorisation" in _material_kinds(facts)}
        case "not_seriously_dishonest":
            return {"serious_dishonesty_listed": bool(facts.get("declarations", {}).get("serious_dishonesty_listed"))}
        case "no_duplicate_application":
            return {"other_district_funds_for_same_item": bool(facts.get("declarations", {}).get("other_district_funds_for_same_item")),
                    "other_applications": sorted(others)}
        case "industry_code":
            return {"industry_code": applicant.get("industry_code")}
        case "supplier_not_related":
            return {"contracts": [{"contract_no": c.get("contract_no"), "supplier_uscc": c.get("supplier_uscc")} for c in contracts],
                    "related_party_usccs": sorted(applicant.get("related_party_usccs") or [])}
        case "model_filed_or_assessed":
            return {"contracts": [{"contract_no": c.get("contract_no"), "cac_filing_no": c.get("cac_filing_no"),
                                   "security_assessment_level": (c.get("security_assessment") or {}).get("level")} for c in contracts]}
        case "materials_complete":
            return {"required": required_materials(facts), "uploaded": sorted(k for k in _material_kinds(facts) if k)}
    return {}


def explained(findings: Sequence[PreCheckFinding], facts: dict[str, Any], others: Sequence[str],
              parameters: Parameters | None = None, ruleset_version: str = RULESET_VERSION) -> list[dict[str, Any]]:
    """The findings as review keeps them for the reviewer (review.pre_check_findings)."""
    global _params
    _params = parameters or DEFAULT
    try:
        return [
            {**finding.model_dump(), "explanation": EXPLANATIONS.get(finding.rule, ""),
             "evidence": evidence(finding.rule, facts, others), "ruleset_version": ruleset_version}
            for finding in findings
        ]
    finally:
        _params = DEFAULT
