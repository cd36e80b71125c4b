"""Money rules shared by both programs. Integer fen only: a rate or a proportion is applied as an
exact fraction of integers and rounded once, by the rule the batch configures.

- `round_fraction`: numerator/denominator fen, rounded to a unit by FLOOR or HALF_UP.
- `remaining_cap`: what is left of a yearly cap after what the ledger already holds.
- `prorate_to_budget` (按比例核减): every amount reduced in the same proportion so that the total
  equals the budget exactly, to the fen.
"""

from __future__ import annotations

from collections.abc import Mapping

from subsidy.programs.batch import Rounding


def round_fraction(numerator: int, denominator: int, rule: Rounding, unit_fen: int = 1) -> int:
    """`numerator / denominator` fen, rounded to a multiple of `unit_fen` by `rule`.

    >>> round_fraction(10, 3, Rounding.FLOOR), round_fraction(5, 2, Rounding.HALF_UP), round_fraction(249, 1, Rounding.HALF_UP, 100)
    (3, 3, 200)
    """
    if numerator < 0 or denominator <= 0 or unit_fen < 1:
        raise ValueError("round_fraction takes a non-negative amount, a positive denominator and a positive unit")
    whole, rest = divmod(numerator, denominator * unit_fen)
    if rule is Rounding.HALF_UP and 2 * rest >= denominator * unit_fen:
        whole += 1
    return whole * unit_fen


def percent_of(amount_fen: int, rate_percent: int, rule: Rounding, unit_fen: int = 1) -> int:
    """`rate_percent`% of `amount_fen`, rounded once by `rule`."""
    return round_fraction(amount_fen * rate_percent, 100, rule, unit_fen)


def yuan(fen: int) -> str:
    """Integer fen as yuan for people: 150000000 -> '1,500,000.00 元'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d} 元"


def remaining_cap(cap_fen: int, already_awarded_fen: int) -> int:
    """What a yearly cap still allows after the awards already counted against it (never negative).

    The amounts already counted come from the ledger (PostgreSQL, per USCC and year); this is only the
    arithmetic, the same for the first application of the year and the fifth.
    """
    if cap_fen < 0 or already_awarded_fen < 0:
        raise ValueError("caps and awarded amounts are non-negative fen")
    return max(0, cap_fen - already_awarded_fen)


def prorate_to_budget(
    awards: Mapping[str, int], budget_fen: int, caps: Mapping[str, int] | None = None
) -> dict[str, int]:
    """按比例核减: each award reduced in the same proportion so that the total is the budget, to the fen.

    - Each amount is first limited to its cap when `caps` names one (`min(award, cap)`): the result is
      never above an award's original amount nor its cap.
    - If the (limited) total is within the budget, the amounts are returned unchanged: a budget never
      raises an award.
    - Otherwise each gets `floor(amount * budget / total)`; the fen still missing (fewer than the number
      of awards) go one each to the largest remainders `amount * budget mod total`, ties broken by the
      key (the application number) in ascending order. The total then equals the budget exactly, and an
      award that gets a remainder fen had a non-zero remainder, so it stays below its original amount.
    """
    if budget_fen < 0:
        raise ValueError("the budget is non-negative fen")
    caps = caps or {}
    limited: dict[str, int] = {}
    for key, amount in awards.items():
        if amount < 0:
            raise ValueError(f"award {key} is negative")
        cap = caps.get(key)
        if cap is not None and cap < 0:
            raise ValueError(f"cap of {key} is negative")
        limited[key] = amount if cap is None else min(amount, cap)
    total = sum(limited.values())
    if total <= budget_fen:
        return limited
    shares = {key: divmod(amount * budget_fen, total) for key, amount in limited.items()}
    result = {key: whole for key, (whole, _) in shares.items()}
    missing = budget_fen - sum(result.values())
    by_remainder = sorted(shares, key=lambda key: (-shares[key][1], key))
    for key in by_remainder[:missing]:
        result[key] += 1
    return result
