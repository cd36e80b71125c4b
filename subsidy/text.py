"""Text that cannot be stored: NUL (U+0000) and unpaired surrogates (U+D800..U+DFFF).

JSON may carry both as escapes (`"\\u0000"`, `"\\ud800"`) and Python decodes them, but PostgreSQL
refuses NUL in text and jsonb ("unsupported Unicode escape sequence") and a lone surrogate cannot
be encoded as UTF-8 at all (asyncpg fails before the server sees it). Met only when a row is
written, after the workflow had applied the request: every edge refuses such text before it acts
(`unstorable_at`), and what records a refusal stores it with each such character replaced
(`storable`).
"""

from __future__ import annotations

import re
from typing import Any

from subsidy.identifiers import mask_personal_data

UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
UNSTORABLE_MESSAGE = "提交的内容含有无法保存的控制字符（如 \\u0000）或无效的 Unicode 字符，请删除后重新提交"


def has_unstorable(text: str) -> bool:
    """Whether `text` holds a NUL or an unpaired surrogate (a str decoded from valid UTF-8 or from
    JSON with paired surrogate escapes never holds a surrogate)."""
    return UNSTORABLE_CHARACTERS.search(text) is not None


def unstorable_at(value: Any) -> str | None:
    """Where in `value` (JSON-like: dicts, lists, strings, numbers) a string or object key
    with unstorable text is, as a dotted path ("reasons.0", "(root)"); None when there is none.
    Walked without recursion, so that no nesting depth makes it fail."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, str):
            if has_unstorable(node):
                return path or "(root)"
        elif isinstance(node, dict):
            for key, item in node.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and has_unstorable(key):
                    return path or "(root)"  # the key itself is not repeated: it cannot be printed
                pending.append((name, item))
        elif isinstance(node, list | tuple):
            pending.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(node))
    return None


def unstorable_reason(value: Any) -> str | None:
    """The refusal's reason for operators and the audit when `value` holds unstorable text
    (`unstorable_at`: where, personal numbers masked, at most 300 characters); None when it holds none."""
    if (where := unstorable_at(value)) is None:
        return None
    return mask_personal_data(f"unstorable character at {where}")[:300]


def storable(value: Any) -> Any:
    """`value` with every unstorable character of its strings and keys replaced by U+FFFD, for the
    record of a refused request (the audit keeps what was sent, as near as it can be stored)."""
    if isinstance(value, str):
        return UNSTORABLE_CHARACTERS.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(item) for item in value)
    return value
