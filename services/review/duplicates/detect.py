"""Duplicate and multi-source claims across applications, batches and programs (LG 三(一)4, SZ 03(四)).

`find_duplicates(claims)` looks at every claim at once and returns, per application, the flags that
link it to the others. It never rejects and never drops a match: a flag is for the reviewer to
acknowledge (audited elsewhere), with the normalised key and the other applications named.

What is flagged (keys normalised by normalize.py):

- `same_invoice`: one invoice number in two applications (or twice in one application);
- `same_contract`: one contract number, with the same supplier, in two applications;
- `same_product`: one product (name + scenario) in two applications: by two applicants, in two
  batches, or twice by one applicant;
- `cross_program_applicant`: one applicant (USCC) in two programs (Longgang and Shenzhen, whatever
  the batch). The texts forbid different things (LG: the same item in two district funds unless
  declared; SZ: the same product in two municipal measures or by two applicants), so the flag only
  links the applications and shows the other side's declarations, for each reviewer to judge.

A program is its code without the year (`scheme_of`): two batches of one program are not two programs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.review.duplicates.normalize import (
    normalize_contract_no,
    normalize_invoice_no,
    normalize_uscc,
    product_key,
)
from subsidy.programs.batch import scheme_of

FlagKind = Literal["same_invoice", "same_contract", "same_product", "cross_program_applicant"]

# The clause each program's reviewer reads the flag against.
DEFAULT_CLAUSES: dict[str, str] = {"LG-AI-MODEL": "三(一)4", "SZ-GOVAI-SCENARIO": "03(四)"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContractRef(_Model):
    contract_no: str
    supplier_uscc: str | None = None


class ProductRef(_Model):
    name: str
    scenario_id: str | None = None


class Claim(_Model):
    """What one application claims, as far as duplicates go."""

    program: str
    application_no: str
    applicant_uscc: str
    applicant_name: str = ""
    invoices: tuple[str, ...] = ()
    contracts: tuple[ContractRef, ...] = ()
    product: ProductRef | None = None
    declarations: dict[str, Any] = Field(default_factory=dict)


class Link(_Model):
    program: str
    application_no: str
    applicant_uscc: str
    applicant_name: str = ""
    declarations: dict[str, Any] = Field(default_factory=dict)


class Flag(_Model):
    kind: FlagKind
    clause: str
    key: str  # the normalised value the applications share
    others: tuple[Link, ...]  # the other applications concerned (empty: repeated within this one)
    message: str  # Chinese, for the reviewer


def claim_from_facts(program: str, application_no: str, facts: Mapping[str, Any]) -> Claim:
    """A Claim from a stored version's facts (either program's portal payload, CONTRACTS.md)."""
    applicant = facts.get("applicant") or {}
    contracts = tuple(facts.get("model_contracts") or ())
    product = facts.get("product")
    return Claim(
        program=program, application_no=application_no,
        applicant_uscc=str(applicant.get("uscc") or ""), applicant_name=str(applicant.get("name") or ""),
        invoices=tuple(str(i.get("invoice_no") or "") for c in contracts for i in c.get("invoices") or ()),
        contracts=tuple(ContractRef(contract_no=str(c.get("contract_no") or ""), supplier_uscc=c.get("supplier_uscc")) for c in contracts),
        product=ProductRef(name=str(product.get("name") or ""), scenario_id=product.get("scenario_id")) if product else None,
        declarations=dict(facts.get("declarations") or {}),
    )


def find_duplicates(claims: Iterable[Claim], clauses: Mapping[str, str] | None = None) -> dict[str, tuple[Flag, ...]]:
    """Flags per application number (every application given is a key, with () when nothing is shared).

    `clauses`: program scheme (`LG-AI-MODEL`) -> the clause its reviewers cite; defaults to the 2025 texts'.
    """
    claims = list(claims)
    clauses = {**DEFAULT_CLAUSES, **(clauses or {})}
    by_no = {c.application_no: c for c in claims}
    if len(by_no) != len(claims):
        raise ValueError("each application may be given once")
    flags: dict[str, list[Flag]] = {c.application_no: [] for c in claims}

    def clause_of(claim: Claim) -> str:
        return clauses.get(scheme_of(claim.program), "")

    def link(claim: Claim) -> Link:
        return Link(program=claim.program, application_no=claim.application_no, applicant_uscc=claim.applicant_uscc,
                    applicant_name=claim.applicant_name, declarations=claim.declarations)

    def flag_groups(kind: FlagKind, groups: Mapping[Any, Sequence[str]], describe: Callable[[Any, Claim, tuple[Link, ...]], str]) -> None:
        for key, numbers in groups.items():
            distinct = sorted(set(numbers))
            repeated_within = len(numbers) > len(distinct)
            if len(distinct) < 2 and not repeated_within:
                continue
            for no in distinct:
                others = tuple(link(by_no[o]) for o in distinct if o != no)
                flags[no].append(Flag(kind=kind, clause=clause_of(by_no[no]), key=_key_text(key),
                                      others=others, message=describe(key, by_no[no], others)))

    # invoices: one key per invoice number
    invoices: dict[str, list[str]] = defaultdict(list)
    for claim in claims:
        for number in claim.invoices:
            if key := normalize_invoice_no(number):
                invoices[key].append(claim.application_no)
    flag_groups("same_invoice", invoices, lambda key, claim, others: (
        f"发票号码 {key} 同时出现在：{_names(others)}" if others else f"发票号码 {key} 在本申报中重复出现"))

    # contracts: the same number with the same supplier
    contracts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for claim in claims:
        for ref in claim.contracts:
            if number := normalize_contract_no(ref.contract_no):
                contracts[(number, normalize_uscc(ref.supplier_uscc))].append(claim.application_no)
    flag_groups("same_contract", contracts, lambda key, claim, others: (
        f"合同编号 {key[0]}（供给方 {key[1] or '未填'}）同时出现在：{_names(others)}" if others
        else f"合同编号 {key[0]}（供给方 {key[1] or '未填'}）在本申报中重复出现"))

    # products: the same normalised name answering the same scenario
    products: dict[tuple[str, str], list[str]] = defaultdict(list)
    for claim in claims:
        if claim.product is not None:
            key = product_key(claim.product.name, claim.product.scenario_id)
            if key[0]:
                products[key].append(claim.application_no)

    def describe_product(key: tuple[str, str], claim: Claim, others: tuple[Link, ...]) -> str:
        mine = normalize_uscc(claim.applicant_uscc)
        by_others = [o for o in others if normalize_uscc(o.applicant_uscc) != mine]
        own = [o for o in others if normalize_uscc(o.applicant_uscc) == mine]
        parts = []
        if by_others:
            parts.append(f"其他申报单位申报了同一产品：{_names(by_others)}")
        if own:
            parts.append(f"本单位另有申报同一产品：{_names(own)}")
        return f"产品“{key[0]}”（场景 {key[1] or '未填'}）：" + "；".join(parts)

    flag_groups("same_product", products, describe_product)

    # one applicant in two programs
    schemes: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for claim in claims:
        if uscc := normalize_uscc(claim.applicant_uscc):
            schemes[uscc][scheme_of(claim.program)].append(claim.application_no)
    for uscc, by_scheme in schemes.items():
        if len(by_scheme) < 2:
            continue
        for scheme, numbers in by_scheme.items():
            others = tuple(link(by_no[o]) for s, nos in sorted(by_scheme.items()) if s != scheme for o in sorted(nos))
            for no in sorted(numbers):
                flags[no].append(Flag(
                    kind="cross_program_applicant", clause=clause_of(by_no[no]), key=uscc, others=others,
                    message=f"申报单位 {uscc} 同时申报了其他专项：{_names(others)}（请核对其声明，判断是否重复或多头申报）",
                ))

    return {no: tuple(found) for no, found in flags.items()}


def _names(links: Iterable[Link]) -> str:
    return "、".join(f"{link.program} {link.application_no}" for link in links)


def _key_text(key: Any) -> str:
    return "|".join(key) if isinstance(key, tuple) else str(key)
