"""Shenzhen's expert scores, tiers and amounts (notice 02(一), 02(二), 02(四)), from the batch's
`[scoring]` table: the platform computes them, no caller types them in.

1. Each expert scores every criterion (实用性、创新性、可复制推广性, 02(二)) in whole points on
   0..`scale_max`. The expert's score is the weighted sum, weights in percent: sum(w_i * s_i) / 100.
2. The product's score is the mean of its experts' scores, after dropping one highest and one lowest
   when at least `trim_from` experts scored (`trimmed_mean`); at least `min_experts` must have scored.
   The mean is rounded half up to `score_decimals` decimals, once; the tier reads that rounded score.
   Scores are kept as integers in units of 10^-score_decimals points (no floats).
3. The tier is the first (highest) whose `min_score` the score reaches; below the lowest, no tier
   and no award.
4. Amounts, rule `tier_maximum_then_prorate`: each qualifying product gets its tier's maximum
   (02(一)); an applicant whose products then exceed what remains of its yearly cap (02(四): CNY 10M,
   across its products and the year's earlier awards) has them reduced in proportion to that
   remainder; then, if the round's total exceeds what the year's budget still holds (`budget_fen`
   less `budget_used_fen`, the amounts earlier confirmations of the program recorded; never below 0),
   every amount is reduced in the same proportion (02(一): "根据当年度专项资金预算安排和符合条件的
   产品申请数量情况确定"). Both reductions are `prorate_to_budget`: to the fen, largest remainder,
   ties by application number, never raising an amount, so no amount is above its tier maximum or a
   cap, and the year's recorded amounts never total more than the budget, however many rounds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from services.review.awards.money import prorate_to_budget, remaining_cap, round_fraction, yuan
from subsidy.programs.batch import Rounding, ShenzhenScoring, Tier

__all__ = [
    "AmountLine", "ExpertLine", "ProductScore", "ScoredProduct", "ScoringError", "ShenzhenAmounts",
    "format_score", "product_score", "score_units", "shenzhen_amounts", "tier_for",
]


class ScoringError(ValueError):
    """Scores that cannot be aggregated; `message` is Chinese, for the administrator."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(_Out):
    clause: str
    text: str


class ExpertLine(_Out):
    expert_id: str
    scores: dict[str, int]  # criterion key -> points
    weighted_x100: int  # sum(weight% * points): the expert's score times 100
    score_text: str  # e.g. "86.50"
    dropped: bool  # dropped as the highest or lowest (trimmed mean)


class ProductScore(_Out):
    application_no: str
    experts: tuple[ExpertLine, ...]
    counted: int  # experts whose scores make the mean
    score_units: int  # the final score in units of 10^-score_decimals points
    score_decimals: int
    score_text: str
    tier: int | None
    tier_max_fen: int  # 0 when no tier
    reasons: tuple[Reason, ...]


def format_score(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    whole, part = divmod(units, 10**decimals)
    return f"{whole}.{part:0{decimals}d}"


def score_units(points: int, scoring: ShenzhenScoring) -> int:
    """Whole points (e.g. a tier's min_score) in the units final scores are kept in."""
    return points * 10**scoring.score_decimals


def tier_for(units: int, scoring: ShenzhenScoring) -> Tier | None:
    """The highest tier whose threshold the (rounded) score reaches, or None."""
    for tier in scoring.tiers:
        if units >= score_units(tier.min_score, scoring):
            return tier
    return None


def product_score(application_no: str, expert_scores: Mapping[str, Mapping[str, int]], scoring: ShenzhenScoring) -> ProductScore:
    """The product's score and tier from its experts' scores (expert id -> criterion key -> points)."""
    clauses = scoring.clauses
    keys = [c.key for c in scoring.criteria]
    if len(expert_scores) < scoring.min_experts:
        raise ScoringError("too_few_experts", f"评分专家 {len(expert_scores)} 人，少于规定的 {scoring.min_experts} 人")
    weighted: dict[str, int] = {}
    for expert_id, scores in expert_scores.items():
        missing = [c.name for c in scoring.criteria if c.key not in scores]
        unknown = sorted(set(scores) - set(keys))
        if missing or unknown:
            raise ScoringError("incomplete_scores", f"专家 {expert_id} 的评分" + (
                f"缺少：{'、'.join(missing)}" if missing else f"含未知评分项：{'、'.join(unknown)}"))
        for criterion in scoring.criteria:
            points = scores[criterion.key]
            if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= scoring.scale_max:
                raise ScoringError("score_out_of_scale", (
                    f"专家 {expert_id} 的“{criterion.name}”评分 {points!r} 不在 0 至 {scoring.scale_max} 的整数范围内"))
        weighted[expert_id] = sum(c.weight * scores[c.key] for c in scoring.criteria)

    ranked = sorted(weighted, key=lambda e: (weighted[e], e))
    dropped = {ranked[0], ranked[-1]} if len(ranked) >= scoring.trim_from else set()
    counted = [e for e in ranked if e not in dropped]
    decimals = scoring.score_decimals
    units = round_fraction(sum(weighted[e] for e in counted) * 10**decimals, 100 * len(counted), Rounding.HALF_UP)
    tier = tier_for(units, scoring)
    text = format_score(units, decimals)
    weights = "、".join(f"{c.name}{c.weight}%" for c in scoring.criteria)
    reasons = [
        Reason(clause=clauses["criteria"], text=f"每位专家按{weights}加权计分（每项 0 至 {scoring.scale_max} 分）"),
        Reason(clause=clauses["criteria"], text=(
            f"{len(ranked)} 位专家评分，去掉一个最高分和一个最低分后取 {len(counted)} 位的平均分" if dropped
            else f"{len(ranked)} 位专家评分，取平均分") + f"，四舍五入保留 {decimals} 位小数：{text} 分"),
        Reason(clause=clauses["tiers"], text=(
            f"得分 {text} 分，达到第{tier.tier}档（{tier.min_score} 分及以上），该档最高 {yuan(tier.max_fen)}" if tier
            else f"得分 {text} 分，未达到最低档次（{scoring.tiers[-1].min_score} 分），不予资助")),
    ]
    return ProductScore(
        application_no=application_no,
        experts=tuple(
            ExpertLine(expert_id=e, scores=dict(expert_scores[e]), weighted_x100=weighted[e],
                       score_text=format_score(round_fraction(weighted[e] * 10**decimals, 100, Rounding.HALF_UP), decimals),
                       dropped=e in dropped)
            for e in sorted(weighted)
        ),
        counted=len(counted), score_units=units, score_decimals=decimals, score_text=text,
        tier=tier.tier if tier else None, tier_max_fen=tier.max_fen if tier else 0, reasons=tuple(reasons),
    )


# --- amounts ---------------------------------------------------------------------------------------


class ScoredProduct(_Out):
    application_no: str
    applicant_uscc: str
    tier: int | None


class AmountLine(_Out):
    application_no: str
    applicant_uscc: str
    tier: int | None
    tier_max_fen: int
    after_applicant_cap_fen: int
    amount_fen: int
    reasons: tuple[Reason, ...]


class ShenzhenAmounts(_Out):
    lines: tuple[AmountLine, ...]
    total_fen: int
    budget_fen: int | None
    budget_used_fen: int  # recorded by the year's earlier confirmations (0 without a budget)
    budget_available_fen: int | None  # what this round may total: budget_fen - budget_used_fen, at least 0
    over_budget: bool  # the tier amounts exceeded what the budget holds and were reduced pro rata


def shenzhen_amounts(
    products: Sequence[ScoredProduct],
    scoring: ShenzhenScoring,
    already_awarded: Mapping[str, int] | None = None,
    *,
    budget_used_fen: int = 0,
) -> ShenzhenAmounts:
    """The round's amounts; `already_awarded`: applicant USCC -> fen awarded earlier in `cap_year` (the
    ledger); `budget_used_fen`: fen the program's earlier confirmations recorded against the year's budget."""
    already_awarded = already_awarded or {}
    if budget_used_fen < 0:
        raise ValueError("the budget used is non-negative fen")
    clauses = scoring.clauses
    maxima = scoring.tier_maxima()
    numbers = [p.application_no for p in products]
    if len(set(numbers)) != len(numbers):
        raise ScoringError("duplicate_application", "同一申报编号出现多次")
    for product in products:
        if product.tier is not None and product.tier not in maxima:
            raise ScoringError("unknown_tier", f"申报 {product.application_no} 的档次 {product.tier} 未配置")
    base = {p.application_no: maxima[p.tier] if p.tier is not None else 0 for p in products}

    by_applicant: dict[str, list[str]] = defaultdict(list)
    for product in products:
        by_applicant[product.applicant_uscc].append(product.application_no)
    capped: dict[str, int] = {}
    notes: dict[str, list[Reason]] = defaultdict(list)
    for uscc, apps in by_applicant.items():
        already = already_awarded.get(uscc, 0)
        remaining = remaining_cap(scoring.per_applicant_yearly_cap_fen, already)
        mine = {a: base[a] for a in apps}
        reduced = prorate_to_budget(mine, remaining)
        capped.update(reduced)
        if sum(mine.values()) > remaining:
            for a in apps:
                notes[a].append(Reason(clause=clauses["applicant_cap"], text=(
                    f"同一申报单位 {scoring.cap_year} 年度累计不超过 {yuan(scoring.per_applicant_yearly_cap_fen)}："
                    f"已获 {yuan(already)}，剩余 {yuan(remaining)}，本批 {len(apps)} 个产品按比例核减")))

    final = capped
    budget = scoring.budget_fen
    available = None if budget is None else remaining_cap(budget, budget_used_fen)
    over_budget = available is not None and sum(capped.values()) > available
    if over_budget:
        assert budget is not None and available is not None
        final = prorate_to_budget(capped, available)
        held = (f"年度预算剩余额度 {yuan(available)}（年度预算 {yuan(budget)}，此前已确定 {yuan(budget_used_fen)}）"
                if budget_used_fen else f"年度预算 {yuan(budget)}")
        for a in final:
            if capped[a]:
                notes[a].append(Reason(clause=clauses["tiers"], text=(
                    f"本批各档金额合计 {yuan(sum(capped.values()))} 超过{held}，"
                    "按同一比例核减（到分，余数按最大余数、同余数按申报编号分配）")))

    lines = []
    for product in products:
        a = product.application_no
        head = (
            Reason(clause=clauses["tiers"], text=f"第{product.tier}档，最高 {yuan(base[a])}") if product.tier is not None
            else Reason(clause=clauses["tiers"], text="未达到资助档次，不予资助")
        )
        lines.append(AmountLine(
            application_no=a, applicant_uscc=product.applicant_uscc, tier=product.tier, tier_max_fen=base[a],
            after_applicant_cap_fen=capped[a], amount_fen=final[a],
            reasons=(head, *notes[a], Reason(clause=clauses["tiers"], text=f"拟资助金额 {yuan(final[a])}")),
        ))
    return ShenzhenAmounts(lines=tuple(lines), total_fen=sum(final.values()), budget_fen=budget,
                           budget_used_fen=budget_used_fen if budget is not None else 0, budget_available_fen=available,
                           over_budget=over_budget)
