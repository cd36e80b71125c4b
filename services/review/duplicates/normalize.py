"""How identifiers typed by different people are made comparable. Each function is idempotent
(normalising twice gives the same key) and total (any string, including "", gives a key).

- Unicode NFKC first: full-width letters, digits and punctuation become half-width
  (`ＨＴ－２０２５` -> `HT-2025`), compatibility forms fold.
- Contract and invoice numbers: spaces (any Unicode space) and hyphens/dashes removed, case folded.
- Product names: spaces and punctuation removed, case folded (`《政务 智能问答·助手》` == `政务智能问答助手`).
- USCCs and scenario ids: trimmed, upper case.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

# Hyphen-like characters left after NFKC: ASCII hyphen-minus, the Unicode hyphens and dashes, minus
# sign, small/full-width forms NFKC does not fold, and the katakana-hiragana prolonged sound mark
# typed for a dash in CJK input methods.
_DASHES = "-\u00ad\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d\u30fc"
_SPACES_AND_DASHES = re.compile(rf"[\s{re.escape(_DASHES)}]+")


# Detection normalises every stored claim's keys on each submission: the same texts again and again.
NORMALIZED_CACHE = 65536


def _nfkc(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value or "")


def _stable(step: Callable[[str], str], value: str | None) -> str:
    """Apply `step` until nothing changes: removing a character can let NFKC compose its neighbours
    (`O` + spacing diaeresis -> `O`, space, combining mark -> `Ö`), and the key must be a fixed point."""
    text = value or ""
    for _ in range(8):
        following = step(text)
        if following == text:
            return text
        text = following
    return text


@lru_cache(maxsize=NORMALIZED_CACHE)
def normalize_contract_no(value: str | None) -> str:
    """`ＨＴ－2025 018` and `ht-2025-018` -> `ht2025018`."""
    return _stable(lambda text: _SPACES_AND_DASHES.sub("", _nfkc(text)).casefold(), value)


@lru_cache(maxsize=NORMALIZED_CACHE)
def normalize_invoice_no(value: str | None) -> str:
    """Invoice numbers (20-digit 数电发票 numbers, or code + number of the older ones), as for contracts."""
    return _stable(lambda text: _SPACES_AND_DASHES.sub("", _nfkc(text)).casefold(), value)


@lru_cache(maxsize=NORMALIZED_CACHE)
def normalize_product_name(value: str | None) -> str:
    """Letters, digits and ideographs only, case folded: spaces, punctuation and symbols removed."""
    return _stable(lambda text: "".join(ch for ch in _nfkc(text).casefold() if unicodedata.category(ch)[0] in "LNM"), value)


@lru_cache(maxsize=NORMALIZED_CACHE)
def normalize_uscc(value: str | None) -> str:
    return _stable(lambda text: re.sub(r"\s+", "", _nfkc(text)).upper(), value)


@lru_cache(maxsize=NORMALIZED_CACHE)
def normalize_scenario_id(value: str | None) -> str:
    return _stable(lambda text: re.sub(r"\s+", "", _nfkc(text)).upper(), value)


def product_key(name: str | None, scenario_id: str | None) -> tuple[str, str]:
    """The same product: the same normalised name answering the same scenario."""
    return normalize_product_name(name), normalize_scenario_id(scenario_id)
