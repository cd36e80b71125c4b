"""What a program batch configures beyond its lifecycle: the money (Longgang's `[award]`,
Shenzhen's `[scoring]`), the printed form, paper copies and windows, the public-notice period, the
materials checklist and the pre-check parameters. Read by the review service; `LifecyclePolicy`
(the workflows' contract, subsidy/contracts/lifecycle.py) is not changed by any of this.

Every table is validated when the programs are loaded, with errors that name the table and field.
Money is integer fen; scores are integers on the configured scale (no floats anywhere).
"""

from __future__ import annotations

import re
import string
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fen = Annotated[int, Field(ge=0)]
Clause = Annotated[str, Field(min_length=1, max_length=40)]


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rounding(StrEnum):
    """How a computed amount (a rational number of fen) becomes whole units of `rounding_unit_fen`."""

    FLOOR = "floor"  # down to the unit: never pays more than the rate gives (the workflow's own check floors)
    HALF_UP = "half_up"  # 四舍五入: halves go up


# --- Longgang: the award ([award]) -----------------------------------------------------------------

LONGGANG_AWARD_CLAUSES: dict[str, str] = {
    "scope": "二(一)",  # non-affiliated supplier; model CAC-filed or assessed level 3+
    "rate_and_cycle": "二(二)",  # 30% of the contracts completed in the cycle year; 2M per enterprise per year
    "approval_basis": "二(三)",  # 核准制: what the contract, the VAT invoices and the payments support
    "budget": "按比例核减",  # the district's rule for its funds when the awards exceed the budget
}


class LonggangAward(_Table):
    """`[award]` of a Longgang-shaped batch: 二(二) and 二(三) of the guide.

    The cycle year (`cycle_first_day`..`cycle_last_day`, both inclusive, dates in Asia/Shanghai) is
    "申报指南发布前一周期年度": the twelve months before the guide's publication. It must end before
    `guide_published_on` and last at most one year.
    """

    guide_published_on: date
    cycle_first_day: date
    cycle_last_day: date
    rate_percent: int = Field(ge=1, le=100)
    rounding: Rounding = Rounding.FLOOR
    rounding_unit_fen: int = Field(default=1, ge=1)  # 1 = to the fen, 100 = to the yuan
    enterprise_yearly_cap_fen: Fen  # 二(二): 同一企业每年最高不超过 200 万元
    cap_year: int = Field(ge=2000, le=2100)  # the year whose cap this batch's awards count against
    budget_fen: Fen | None = None  # the batch's budget; awards over it are prorated (按比例核减)
    clauses: dict[str, Clause] = Field(default_factory=lambda: dict(LONGGANG_AWARD_CLAUSES))

    @model_validator(mode="after")
    def _cycle(self) -> Self:
        if self.cycle_first_day > self.cycle_last_day:
            raise ValueError("cycle_first_day is after cycle_last_day")
        if self.cycle_last_day >= self.guide_published_on:
            raise ValueError("the cycle must end before the guide's publication (guide_published_on)")
        if self.cycle_last_day - self.cycle_first_day > timedelta(days=366):
            raise ValueError("the cycle is longer than one year")
        object.__setattr__(self, "clauses", _known_clauses(self.clauses, LONGGANG_AWARD_CLAUSES))
        return self


# --- Shenzhen: expert scoring, tiers and amounts ([scoring]) ---------------------------------------

SHENZHEN_SCORING_CLAUSES: dict[str, str] = {
    "criteria": "02(二)",  # 实用性、创新性、可复制推广性
    "tiers": "02(一)",  # 一档 500 万, 二档 300 万, 三档 100 万; amounts per budget and number of products
    "applicant_cap": "02(四)",  # 同一申报单位同一年度累计不超过 1000 万元
}


class Criterion(_Table):
    key: str = Field(pattern=r"^[a-z][a-z_]*$")
    name: str = Field(min_length=1)  # Chinese, as experts read it
    weight: int = Field(ge=1)  # the weights of all criteria sum to 100 (percent)


class Tier(_Table):
    tier: int = Field(ge=1)
    min_score: int = Field(ge=0)  # points on the scale; a product's final score >= this reaches the tier
    max_fen: Fen  # the tier's maximum (02(一))


class AmountRule(StrEnum):
    # Each qualifying product gets its tier's maximum; an applicant's products over its yearly cap are
    # reduced in proportion to the cap; then, if the total exceeds the budget, every amount is reduced
    # in the same proportion (largest remainder to the fen). Never above a tier maximum or a cap.
    TIER_MAXIMUM_THEN_PRORATE = "tier_maximum_then_prorate"


class Aggregation(StrEnum):
    # Each expert's score is the weighted sum of their criterion scores (weights in percent); the
    # product's score is the mean of the experts' scores, after dropping one highest and one lowest
    # when at least `trim_from` experts scored; the mean is rounded half up to `score_decimals`.
    TRIMMED_MEAN = "trimmed_mean"


class ShenzhenScoring(_Table):
    """`[scoring]` of a Shenzhen-shaped batch: notice 02(一), 02(二), 02(四)."""

    criteria: tuple[Criterion, ...] = Field(min_length=1)
    scale_max: int = Field(default=100, ge=1)  # every criterion is scored in whole points 0..scale_max
    min_experts: int = Field(default=3, ge=1)
    aggregation: Aggregation = Aggregation.TRIMMED_MEAN
    trim_from: int = Field(default=5, ge=3)  # drop highest and lowest from this many experts up
    score_decimals: int = Field(default=2, ge=0, le=4)
    tiers: tuple[Tier, ...] = Field(min_length=1)
    per_applicant_yearly_cap_fen: Fen
    cap_year: int = Field(ge=2000, le=2100)
    budget_fen: Fen | None = None
    amount_rule: AmountRule = AmountRule.TIER_MAXIMUM_THEN_PRORATE
    clauses: dict[str, Clause] = Field(default_factory=lambda: dict(SHENZHEN_SCORING_CLAUSES))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        keys = [c.key for c in self.criteria]
        if len(set(keys)) != len(keys):
            raise ValueError("criteria keys must be unique")
        if sum(c.weight for c in self.criteria) != 100:
            raise ValueError("criteria weights must sum to 100")
        tiers = [t.tier for t in self.tiers]
        if tiers != list(range(1, len(tiers) + 1)):
            raise ValueError("tiers must be numbered 1, 2, 3, ... in order")
        for upper, lower in zip(self.tiers, self.tiers[1:], strict=False):
            if not upper.min_score > lower.min_score:
                raise ValueError(f"tier {upper.tier}'s min_score must be above tier {lower.tier}'s")
            if not upper.max_fen >= lower.max_fen:
                raise ValueError(f"tier {upper.tier}'s max_fen must not be below tier {lower.tier}'s")
        if self.tiers[0].min_score > self.scale_max:
            raise ValueError("tier 1's min_score is above scale_max: no product could reach it")
        object.__setattr__(self, "clauses", _known_clauses(self.clauses, SHENZHEN_SCORING_CLAUSES))
        return self

    def tier_maxima(self) -> dict[int, int]:
        return {t.tier: t.max_fen for t in self.tiers}


# --- the printed form, paper, public notice --------------------------------------------------------

FORM_PLACEHOLDERS = frozenset({"form_id", "application_no", "program"})


class Form(_Table):
    """`[form]`: the watermarked application form (LG 五(一)); `watermark` may use {form_id},
    {application_no}, {program}."""

    title: str = Field(min_length=1)
    watermark: str = Field(min_length=1)
    footer: str = ""

    @model_validator(mode="after")
    def _placeholders(self) -> Self:
        for text in (self.title, self.watermark, self.footer):
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            unknown = names - FORM_PLACEHOLDERS
            if unknown:
                raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; known: {sorted(FORM_PLACEHOLDERS)}")
        return self


class Window(_Table):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
    name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    phone: str = ""


class Paper(_Table):
    """`[paper]`: where and how paper is brought. `copies` is None when the text does not say."""

    copies: int | None = Field(default=None, ge=1)
    appointment_required: bool = False
    windows: tuple[Window, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        codes = [w.code for w in self.windows]
        if len(set(codes)) != len(codes):
            raise ValueError("window codes must be unique")
        return self


class Publication(_Table):
    """`[publication]`: the public notice (公示) period in working days."""

    notice_working_days: int = Field(ge=1, le=30)


# --- materials checklist ---------------------------------------------------------------------------

MaterialCondition = Literal[
    "always", "is_branch", "ethics_sensitive", "any_cac_filed", "any_assessed_not_filed", "is_consortium",
]


class Material(_Table):
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)  # Chinese, as the enterprise and reviewers read it
    clause: Clause
    when: MaterialCondition = "always"
    required: bool = True  # False: listed for reference (e.g. SZ test reports "可以参考")
    online: bool = True  # False: brought on paper only (the printed form)


class Materials(_Table):
    checklist: tuple[Material, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        kinds = [m.kind for m in self.checklist]
        if len(set(kinds)) != len(kinds):
            raise ValueError("material kinds must be unique")
        return self


# --- pre-check / eligibility parameters ------------------------------------------------------------


class LonggangPreChecks(_Table):
    """`[pre_checks]` of a Longgang-shaped batch."""

    district: str = Field(min_length=1)  # 三(一)1: registered and operating in this district
    industry_code_prefixes: tuple[Annotated[str, Field(pattern=r"^[0-9]{2,4}$")], ...] = Field(min_length=1)  # 三(二)1
    min_assessment_level: int = Field(ge=1, le=5)  # 二(一)2: 等级保护测评三级及以上
    clauses: dict[str, Clause] = Field(default_factory=dict)


class ShenzhenPreChecks(_Table):
    """`[pre_checks]` of a Shenzhen-shaped batch: notice 03."""

    city: str = Field(min_length=1)  # 03(一): 在深圳市内 ...
    also_within: tuple[str, ...] = ()  # ... 含深汕特别合作区
    business_lines: dict[str, str] = Field(min_length=1)  # key -> Chinese name, 03(一)
    scenario_published_from: date  # 03(二): the bureau's catalog published in this span, inclusive
    scenario_published_to: date
    clauses: dict[str, Clause] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _span(self) -> Self:
        if self.scenario_published_from > self.scenario_published_to:
            raise ValueError("scenario_published_from is after scenario_published_to")
        return self


def _known_clauses(given: dict[str, str], defaults: dict[str, str]) -> dict[str, str]:
    """A batch may renumber some clauses and keep the others; a key not known is a typo."""
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown clause key(s) {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **given}


def scheme_of(program_code: str) -> str:
    """The program a batch belongs to: its code without the year (`LG-AI-MODEL-2025` -> `LG-AI-MODEL`)."""
    return re.sub(r"-[0-9]{4}$", "", program_code)
