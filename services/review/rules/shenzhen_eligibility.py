"""Shenzhen eligibility (notice 03), each check citing its item, for the formal pre-reviewer.

A finding is `passed` or `needs_person`: the platform never rejects on these; what it cannot confirm
from the facts and the reference data goes to a person with the reason and the evidence read. Checks:

- `shenzhen_entity` 03(一): registered in Shenzhen (深汕特别合作区 included, `also_within`);
- `business_line` 03(一): corpus governance, AI algorithm R&D or application development;
- `scenario_in_catalog` 03(二): the product answers a scenario of the bureau's catalog (reference
  data, `scenarios`) published within `scenario_published_from..to` (2024-10-30..2025-10-30, inclusive);
- `in_real_use` 03(二), 02(二): in use since a date no later than the submission, with a user report;
- `not_government_funded` 03(三): not within government investment or purchased services;
- `no_multi_source_claim` 03(四), 02(三): nothing declared elsewhere, and no duplicate flag
  (services/review/duplicates) on this application;
- `consortium_lead` 03(七): a consortium applies through its lead unit.

Facts are the portal's Shenzhen payload (CONTRACTS.md). A consortium's lead is `consortium.lead_uscc`,
or the member with `role = "lead"` (or `is_lead = true`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.review.duplicates.detect import Flag
from services.review.duplicates.normalize import normalize_scenario_id, normalize_uscc
from services.review.reference.importer import Scenario
from services.review.rules.findings import Finding
from subsidy.programs.batch import ShenzhenPreChecks

CLAUSES: dict[str, str] = {
    "shenzhen_entity": "03(一)",
    "business_line": "03(一)",
    "scenario_in_catalog": "03(二)",
    "in_real_use": "03(二)",
    "not_government_funded": "03(三)",
    "no_multi_source_claim": "03(四)",
    "consortium_lead": "03(七)",
}


EligibilityFinding = Finding  # the name the API may use for these


class Catalog(BaseModel):
    """The scenario catalog as imported: its rows and version (the content hash)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    scenarios: tuple[Scenario, ...]


def shenzhen_eligibility(
    facts: Mapping[str, Any],
    *,
    config: ShenzhenPreChecks,
    catalog: Catalog | None,
    duplicate_flags: Sequence[Flag] = (),
) -> tuple[EligibilityFinding, ...]:
    """Every check of notice 03 on one version's facts, in the notice's order."""
    context = _Context(facts, config, catalog, tuple(duplicate_flags))
    return tuple(check(context) for check in CHECKS)


def multi_source_finding(
    facts: Mapping[str, Any], *, config: ShenzhenPreChecks, duplicate_flags: Sequence[Flag] = (),
) -> EligibilityFinding:
    """03(四) alone (the flags of an application change when another one is recorded)."""
    return _no_multi_source_claim(_Context(facts, config, None, tuple(duplicate_flags)))


class _Context:
    def __init__(self, facts: Mapping[str, Any], config: ShenzhenPreChecks, catalog: Catalog | None, flags: tuple[Flag, ...]):
        self.facts = facts
        self.config = config
        self.catalog = catalog
        self.flags = flags
        self.applicant: Mapping[str, Any] = facts.get("applicant") or {}
        self.product: Mapping[str, Any] = facts.get("product") or {}
        self.declarations: Mapping[str, Any] = facts.get("declarations") or {}

    def clause(self, rule: str) -> str:
        return self.config.clauses.get(rule, CLAUSES[rule])

    def finding(self, rule: str, passed: bool, explanation: str, evidence: dict[str, Any], version: str | None = None) -> EligibilityFinding:
        return EligibilityFinding(rule=rule, clause=self.clause(rule), status="passed" if passed else "needs_person",
                                  explanation=explanation, evidence=evidence, reference_version=version)


def _shenzhen_entity(c: _Context) -> EligibilityFinding:
    city = str(c.applicant.get("registered_city") or "")
    district = str(c.applicant.get("district") or "")
    within = {c.config.city, *c.config.also_within}
    passed = city in within or district in c.config.also_within
    place = "".join(p for p in (city, district) if p) or "未填写"
    scope = c.config.city + (f"（含{'、'.join(c.config.also_within)}）" if c.config.also_within else "")
    return c.finding("shenzhen_entity", passed,
                     f"申报单位注册地：{place}，{'在' if passed else '不在'}{scope}内" + ("" if passed else "，请人工核实实际经营地"),
                     {"registered_city": city or None, "district": district or None})


def _business_line(c: _Context) -> EligibilityFinding:
    lines = [str(x) for x in c.applicant.get("business_lines") or ()]
    known = [c.config.business_lines[x] for x in lines if x in c.config.business_lines]
    wanted = "、".join(c.config.business_lines.values())
    return c.finding("business_line", bool(known),
                     f"申报单位从事：{'、'.join(known)}" if known else f"申报单位未填报{wanted}等相关业务，请人工核实",
                     {"business_lines": lines})


def _scenario_in_catalog(c: _Context) -> EligibilityFinding:
    scenario_id = str(c.product.get("scenario_id") or "")
    declared = c.product.get("scenario_published_on")
    evidence: dict[str, Any] = {"scenario_id": scenario_id or None, "declared_published_on": declared}
    span = f"{c.config.scenario_published_from.isoformat()} 至 {c.config.scenario_published_to.isoformat()}"
    if c.catalog is None:
        return c.finding("scenario_in_catalog", False, "尚未导入政务人工智能应用场景清单，无法核对场景，请人工核实", evidence)
    version = c.catalog.version
    entry = next((s for s in c.catalog.scenarios if normalize_scenario_id(s.scenario_id) == normalize_scenario_id(scenario_id)), None)
    if not scenario_id or entry is None:
        return c.finding("scenario_in_catalog", False,
                         f"场景编号 {scenario_id or '未填写'} 不在场景清单中，请人工核实", evidence, version)
    evidence["catalog_entry"] = entry.model_dump(mode="json")
    within = c.config.scenario_published_from <= entry.published_on <= c.config.scenario_published_to
    problems = []
    if not within:
        problems.append(f"场景发布于 {entry.published_on.isoformat()}，不在 {span} 期间")
    if declared and str(declared) != entry.published_on.isoformat():
        problems.append(f"申报填写的发布日期 {declared} 与清单（{entry.published_on.isoformat()}）不一致")
    if problems:
        return c.finding("scenario_in_catalog", False, f"场景“{entry.title}”（{entry.scenario_id}）：" + "；".join(problems) + "，请人工核实",
                         evidence, version)
    return c.finding("scenario_in_catalog", True,
                     f"场景“{entry.title}”（{entry.scenario_id}）由{entry.publisher}于 {entry.published_on.isoformat()} 发布，在 {span} 期间",
                     evidence, version)


def _in_real_use(c: _Context) -> EligibilityFinding:
    since = _date(c.product.get("in_use_since"))
    submitted = _date(c.facts.get("submitted_at"))
    users = list(c.product.get("user_report_file_ids") or ())
    tests = list(c.product.get("test_report_file_ids") or ())
    problems = []
    if since is None:
        problems.append("未填写投入使用日期")
    elif submitted is not None and since > submitted:
        problems.append(f"投入使用日期 {since.isoformat()} 晚于申报日期 {submitted.isoformat()}")
    if not users:
        problems.append("未提供用户使用报告")
    evidence = {"in_use_since": since.isoformat() if since else None, "user_report_file_ids": users, "test_report_file_ids": tests}
    if problems:
        return c.finding("in_real_use", False, "；".join(problems) + "，请人工核实产品是否已在实际场景中投入使用", evidence)
    note = "" if tests else "（未提供性能测试、安全测试等报告，可供专家参考的材料较少）"
    return c.finding("in_real_use", True, f"产品自 {since.isoformat()} 起投入使用，已提供用户使用报告{note}", evidence)  # type: ignore[union-attr]


def _not_government_funded(c: _Context) -> EligibilityFinding:
    funded = c.product.get("government_funded")
    evidence = {"government_funded": funded}
    if funded is False:
        return c.finding("not_government_funded", True, "申报单位声明产品开发不属于政府投资建设或购买服务的范围", evidence)
    if funded is True:
        return c.finding("not_government_funded", False, "申报单位声明产品开发属于政府投资建设或购买服务的范围，请人工核实", evidence)
    return c.finding("not_government_funded", False, "申报单位未声明产品开发是否属于政府投资建设或购买服务，请人工核实", evidence)


def _no_multi_source_claim(c: _Context) -> EligibilityFinding:
    declared = c.declarations.get("other_municipal_support_for_same_product")
    problems = []
    if declared is True:
        problems.append("申报单位声明同一产品已申报或享受市级其他同类优惠措施")
    elif declared is None:
        problems.append("申报单位未声明同一产品是否申报市级其他同类优惠措施")
    problems += [flag.message for flag in c.flags]
    evidence = {
        "other_municipal_support_for_same_product": declared,
        "flags": [{"kind": f.kind, "key": f.key, "others": [o.application_no for o in f.others]} for f in c.flags],
    }
    if problems:
        return c.finding("no_multi_source_claim", False, "；".join(problems) + "，请人工判断是否多头或重复申报", evidence)
    return c.finding("no_multi_source_claim", True, "未发现多头申报或重复申报，也未发现其他单位申报同一产品", evidence)


def _consortium_lead(c: _Context) -> EligibilityFinding:
    consortium = c.facts.get("consortium") or {}
    applicant = normalize_uscc(c.applicant.get("uscc"))
    if not consortium.get("is_consortium"):
        return c.finding("consortium_lead", True, "非联合体申报", {"is_consortium": False})
    members = [m for m in consortium.get("members") or () if isinstance(m, Mapping)]
    lead = consortium.get("lead_uscc") or next(
        (m.get("uscc") for m in members if m.get("role") == "lead" or m.get("is_lead") is True), None)
    evidence = {"is_consortium": True, "lead_uscc": lead, "member_usccs": [m.get("uscc") for m in members]}
    if not lead:
        return c.finding("consortium_lead", False, "联合体申报，但未注明牵头单位，请人工核实申报单位是否为牵头单位", evidence)
    if normalize_uscc(lead) != applicant:
        return c.finding("consortium_lead", False, f"联合体牵头单位为 {lead}，申报单位不是牵头单位，请人工核实", evidence)
    return c.finding("consortium_lead", True, f"联合体申报，申报单位为牵头单位（成员 {len(members)} 家）", evidence)


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not value:
        return None
    try:
        text = str(value)
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        return None


CHECKS: tuple[Callable[[_Context], EligibilityFinding], ...] = (
    _shenzhen_entity,
    _business_line,
    _scenario_in_catalog,
    _in_real_use,
    _not_government_funded,
    _no_multi_source_claim,
    _consortium_lead,
)
