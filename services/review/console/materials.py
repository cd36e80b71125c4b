"""Material kinds by their Chinese names: the rules' own table (review's pre-checks name them)."""

from __future__ import annotations

import functools


@functools.cache
def _names() -> dict[str, str]:
    try:
        from services.review.rules.longgang import MATERIAL_NAMES
    except ImportError:  # before review's rooms (services/review/rules/) are merged
        from services.review.pre_checks import MATERIAL_NAMES
    return dict(MATERIAL_NAMES)


def material_zh(kind: str) -> str:
    return _names().get(kind, kind)
