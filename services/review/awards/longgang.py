"""Longgang's award (guide 二(一), 二(二), 二(三)), computed from the application's contracts, never
typed in. Every amount carries the clause that makes it, in Chinese, for the administrator to read.

Per contract (`ModelContract`, CONTRACTS.md's `model_contracts[]`):

- excluded, 二(二), when it was not completed within the batch's cycle year
  (`[award] cycle_first_day .. cycle_last_day`, both inclusive) or has no completion date;
- excluded, 二(一), when the supplier is the applicant itself, its head office or a declared related
  party (关联方), or gives no USCC to tell;
- excluded, 二(一), when the model is neither filed with the CAC (a filing number) nor assessed at
  classified-protection level `min_assessment_level` (3) or above;
- otherwise its eligible amount is the smallest of the contract amount, the sum of its VAT invoices
  and the sum of its payments (核准制, 二(三)). An invoice number (or bank reference) already counted
  for an earlier contract of the same application is not counted again.

The award is `rate_percent`% of the eligible total, rounded once by the batch's rule (floor to the
fen in 2025), then limited to what remains of the enterprise's yearly cap (二(二): CNY 2M per USCC
per year, across all its applications and batches of that year). What was already awarded comes from
the ledger; `remaining_cap` is the arithmetic. A batch budget, when set, is applied over all the
batch's awards afterwards by `prorate_batch` (按比例核减).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from services.review.awards.money import percent_of, prorate_to_budget, remaining_cap, yuan
from services.review.duplicates.normalize import normalize_invoice_no, normalize_uscc
from subsidy.programs.batch import LonggangAward, Rounding

__all__ = [
    "AwardBreakdown", "ContractLine", "ModelContract", "Reason", "longgang_award", "longgang_award_from_facts",
    "prorate_batch", "prorate_to_budget", "remaining_cap",
]

ROUNDING_NAMES = {Rounding.FLOOR: "向下取整", Rounding.HALF_UP: "四舍五入"}


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Invoice(_In):
    invoice_no: str = ""
    amount_fen: int  # a red-letter (红字) invoice is negative
    issued_on: date | None = None


class Payment(_In):
    bank_ref: str = ""
    amount_fen: int
    paid_on: date | None = None


class SecurityAssessment(_In):
    level: int | None = None
    certificate_no: str = ""
    assessor_name: str = ""
    assessed_on: date | None = None


class ModelContract(_In):
    """One model-service contract as the portal sends it (CONTRACTS.md); `model` is accepted for `model_name`."""

    contract_no: str = ""
    supplier_name: str = ""
    supplier_uscc: str | None = None
    model_name: str = Field(default="", validation_alias=AliasChoices("model_name", "model"))
    cac_filing_no: str | None = None
    security_assessment: SecurityAssessment | None = None
    signed_on: date | None = None
    completed_on: date | None = None
    amount_fen: int = Field(ge=0)
    invoices: tuple[Invoice, ...] = ()
    payments: tuple[Payment, ...] = ()


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(_Out):
    clause: str
    text: str  # Chinese: the administrator reads it


class ContractLine(_Out):
    contract_no: str
    supplier_name: str
    supplier_uscc: str | None
    included: bool
    contract_amount_fen: int
    invoiced_fen: int  # the invoices counted for this contract
    paid_fen: int  # the payments counted for this contract
    eligible_fen: int  # 0 when excluded
    reasons: tuple[Reason, ...]


class AwardBreakdown(_Out):
    """The award of one application and how it was reached; `award_fen` is what to confirm."""

    program: str | None
    application_no: str | None
    applicant_uscc: str
    cycle_first_day: date
    cycle_last_day: date
    contracts: tuple[ContractLine, ...]
    eligible_total_fen: int
    rate_percent: int
    rounding: Rounding
    rounding_unit_fen: int
    computed_fen: int  # rate x eligible total, rounded
    cap_year: int
    enterprise_yearly_cap_fen: int
    already_awarded_fen: int  # to this enterprise in cap_year, before this application (the ledger)
    remaining_cap_fen: int
    award_fen: int  # min(computed, remaining cap)
    capped: bool
    summary: tuple[Reason, ...]


def longgang_award(
    contracts: Sequence[ModelContract | Mapping[str, Any]],
    *,
    applicant_uscc: str,
    config: LonggangAward,
    related_party_usccs: Iterable[str] = (),
    head_office_uscc: str | None = None,
    already_awarded_fen: int = 0,
    min_assessment_level: int = 3,
    program: str | None = None,
    application_no: str | None = None,
) -> AwardBreakdown:
    """The award of one application; `already_awarded_fen`: the enterprise's other awards in `config.cap_year`."""
    clauses = config.clauses
    parsed = [c if isinstance(c, ModelContract) else ModelContract.model_validate(c) for c in contracts]
    related = {normalize_uscc(u) for u in (*related_party_usccs, applicant_uscc, head_office_uscc or "") if u}
    related.discard("")
    counted_invoices: dict[str, str] = {}  # normalised number -> the contract it was counted for
    counted_payments: dict[str, str] = {}
    lines = [
        _contract_line(c, config, clauses, related, min_assessment_level, counted_invoices, counted_payments)
        for c in parsed
    ]
    total = sum(line.eligible_fen for line in lines)
    computed = percent_of(total, config.rate_percent, config.rounding, config.rounding_unit_fen)
    remaining = remaining_cap(config.enterprise_yearly_cap_fen, already_awarded_fen)
    award = min(computed, remaining)
    unit = "分" if config.rounding_unit_fen == 1 else f"{yuan(config.rounding_unit_fen)}"
    summary = [
        Reason(clause=clauses["approval_basis"], text=(
            f"可核准金额合计 {yuan(total)}（{sum(1 for line in lines if line.included)} 份合同计入，"
            f"{sum(1 for line in lines if not line.included)} 份不计入）")),
        Reason(clause=clauses["rate_and_cycle"], text=(
            f"按 {config.rate_percent}% 计算：{yuan(total)} × {config.rate_percent}% = {yuan(computed)}"
            f"（{ROUNDING_NAMES[config.rounding]}到{unit}）")),
        Reason(clause=clauses["rate_and_cycle"], text=(
            f"同一企业 {config.cap_year} 年度最高 {yuan(config.enterprise_yearly_cap_fen)}，"
            f"本年度已核定 {yuan(already_awarded_fen)}，剩余额度 {yuan(remaining)}")),
        Reason(clause=clauses["rate_and_cycle"], text=(
            f"核定资助金额 {yuan(award)}" + ("（受企业年度上限限制）" if award < computed else ""))),
    ]
    return AwardBreakdown(
        program=program, application_no=application_no, applicant_uscc=applicant_uscc,
        cycle_first_day=config.cycle_first_day, cycle_last_day=config.cycle_last_day,
        contracts=tuple(lines), eligible_total_fen=total, rate_percent=config.rate_percent,
        rounding=config.rounding, rounding_unit_fen=config.rounding_unit_fen, computed_fen=computed,
        cap_year=config.cap_year, enterprise_yearly_cap_fen=config.enterprise_yearly_cap_fen,
        already_awarded_fen=already_awarded_fen, remaining_cap_fen=remaining, award_fen=award,
        capped=award < computed, summary=tuple(summary),
    )


def longgang_award_from_facts(
    facts: Mapping[str, Any],
    *,
    config: LonggangAward,
    already_awarded_fen: int = 0,
    min_assessment_level: int = 3,
    program: str | None = None,
    application_no: str | None = None,
) -> AwardBreakdown:
    """The same, from a stored version's facts (the portal's Longgang payload)."""
    applicant = facts.get("applicant") or {}
    return longgang_award(
        facts.get("model_contracts") or (),
        applicant_uscc=str(applicant.get("uscc") or ""),
        related_party_usccs=applicant.get("related_party_usccs") or (),
        head_office_uscc=applicant.get("head_office_uscc"),
        config=config, already_awarded_fen=already_awarded_fen, min_assessment_level=min_assessment_level,
        program=program or facts.get("program"), application_no=application_no or facts.get("application_no"),
    )


def prorate_batch(awards: Mapping[str, int], config: LonggangAward) -> dict[str, int]:
    """The batch's awards (application number -> fen) after its budget, if it has one (按比例核减)."""
    if config.budget_fen is None:
        return dict(awards)
    return prorate_to_budget(awards, config.budget_fen)


# --- one contract ---------------------------------------------------------------------------------


def _contract_line(
    contract: ModelContract,
    config: LonggangAward,
    clauses: Mapping[str, str],
    related: set[str],
    min_level: int,
    counted_invoices: dict[str, str],
    counted_payments: dict[str, str],
) -> ContractLine:
    name = contract.contract_no or "（无编号）"
    exclusions: list[Reason] = []
    notes: list[Reason] = []
    cycle = f"{config.cycle_first_day.isoformat()} 至 {config.cycle_last_day.isoformat()}"

    if contract.completed_on is None:
        exclusions.append(Reason(clause=clauses["rate_and_cycle"], text=f"合同 {name} 未填写完成日期，无法确认在周期年度（{cycle}）内完成"))
    elif not config.cycle_first_day <= contract.completed_on <= config.cycle_last_day:
        exclusions.append(Reason(clause=clauses["rate_and_cycle"], text=(
            f"合同 {name} 完成于 {contract.completed_on.isoformat()}，不在周期年度（{cycle}）内")))
    else:
        notes.append(Reason(clause=clauses["rate_and_cycle"], text=(
            f"合同 {name} 完成于 {contract.completed_on.isoformat()}，在周期年度（{cycle}）内")))

    supplier = normalize_uscc(contract.supplier_uscc)
    if not supplier:
        exclusions.append(Reason(clause=clauses["scope"], text=f"合同 {name} 未填写模型供给方统一社会信用代码，无法确认为非关联方"))
    elif supplier in related:
        exclusions.append(Reason(clause=clauses["scope"], text=(
            f"合同 {name} 的模型供给方 {contract.supplier_name or supplier}（{supplier}）为申报单位本身或其关联方")))

    filing = (contract.cac_filing_no or "").strip()
    level = contract.security_assessment.level if contract.security_assessment else None
    if filing:
        notes.append(Reason(clause=clauses["scope"], text=f"模型已完成生成式人工智能服务备案（{filing}）"))
    elif level is not None and level >= min_level:
        notes.append(Reason(clause=clauses["scope"], text=f"模型通过 {level} 级网络安全等级保护测评"))
    else:
        exclusions.append(Reason(clause=clauses["scope"], text=(
            f"合同 {name} 的模型既无网信办生成式人工智能服务备案，也无{min_level}级及以上等级保护测评"
            + (f"（测评等级 {level} 级）" if level is not None else ""))))

    if exclusions:  # its invoices and payments are shown, not counted (another contract may count them)
        invoiced = sum(i.amount_fen for i in contract.invoices)
        paid = sum(p.amount_fen for p in contract.payments)
        return ContractLine(
            contract_no=contract.contract_no, supplier_name=contract.supplier_name, supplier_uscc=contract.supplier_uscc,
            included=False, contract_amount_fen=contract.amount_fen, invoiced_fen=invoiced, paid_fen=paid,
            eligible_fen=0, reasons=tuple(exclusions),
        )
    basis_clause = clauses["approval_basis"]
    invoiced = _count(contract.invoices, name, counted_invoices, lambda i: normalize_invoice_no(i.invoice_no), "发票", notes, basis_clause)
    paid = _count(contract.payments, name, counted_payments, lambda p: normalize_invoice_no(p.bank_ref), "付款凭证", notes, basis_clause)
    smallest = min(contract.amount_fen, invoiced, paid)
    eligible = max(0, smallest)
    basis = "、".join(label for label, value in (("合同金额", contract.amount_fen), ("增值税发票合计", invoiced), ("付款合计", paid)) if value == smallest)
    notes.append(Reason(clause=basis_clause, text=(
        f"核准制：取合同金额 {yuan(contract.amount_fen)}、增值税发票合计 {yuan(invoiced)}、付款合计 {yuan(paid)} "
        f"三者中的最小值（{basis}），可核准 {yuan(eligible)}")))
    return ContractLine(
        contract_no=contract.contract_no, supplier_name=contract.supplier_name, supplier_uscc=contract.supplier_uscc,
        included=True, contract_amount_fen=contract.amount_fen, invoiced_fen=invoiced, paid_fen=paid,
        eligible_fen=eligible, reasons=tuple(notes),
    )


_Item = TypeVar("_Item", Invoice, Payment)


def _count(
    items: Sequence[_Item], contract_name: str, counted: dict[str, str], key_of: Callable[[_Item], str],
    what: str, notes: list[Reason], clause: str,
) -> int:
    """The sum of `items`, skipping any whose number was already counted in this application."""
    total = 0
    for item in items:
        key = key_of(item)
        if key and key in counted:
            notes.append(Reason(clause=clause, text=(
                f"{what} {key} 已计入合同 {counted[key]}，本合同不重复计算")))
            continue
        if key:
            counted[key] = contract_name
        total += item.amount_fen
    return total
