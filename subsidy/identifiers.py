"""Chinese identifiers: validation, normalisation and masking. Pure functions, no framework.

- Unified Social Credit Code (统一社会信用代码, USCC), GB 32100-2015.
- Resident identity card number (公民身份号码), GB 11643-1999, ISO 7064 MOD 11-2.
- Mainland China mobile numbers.

Validation errors never echo the value: they may end up in logs and DLQ headers.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator

__all__ = [
    "USCC",
    "USCC_CHARSET",
    "InvalidIdentifierError",
    "Mobile",
    "ResidentId",
    "is_valid_mobile",
    "is_valid_resident_id",
    "is_personal_field",
    "is_valid_uscc",
    "mask_mobile",
    "mask_personal_data",
    "mask_personal_data_in",
    "mask_personal_number",
    "mask_personal_text",
    "mask_personal_value",
    "mask_resident_id",
    "normalise_mobile",
    "normalise_resident_id",
    "resident_id_check_char",
    "uscc_check_char",
]


class InvalidIdentifierError(ValueError):
    """An identifier failed validation. The message never contains the value itself."""


# --- Unified Social Credit Code ------------------------------------------------------------

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARSET)}
_C = "0-9A-HJ-NP-RTUWXY"  # the charset as a regex class body
# registration authority + entity type, administrative division (digits), organisation code, check
_USCC_SHAPE = re.compile(rf"[{_C}]{{2}}[0-9]{{6}}[{_C}]{{9}}[{_C}]")


def uscc_check_char(first17: str) -> str:
    """The check character for the first 17 characters of a USCC."""
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise InvalidIdentifierError("USCC body must be 17 characters of the USCC charset")
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def _uscc_problem(s: object) -> str | None:
    if not isinstance(s, str) or not _USCC_SHAPE.fullmatch(s):
        return "invalid USCC (format)"
    if uscc_check_char(s[:17]) != s[17]:
        return "invalid USCC (check character)"
    return None


def is_valid_uscc(s: object) -> bool:
    """True for an 18-character USCC with a correct check character (upper case only)."""
    return _uscc_problem(s) is None


# --- Resident ID number --------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_MAP = "10X98765432"
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') for 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidIdentifierError("resident ID number body must be 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_MAP[total % 11]


def normalise_resident_id(s: str) -> str:
    """Upper-case the check character ('x' -> 'X'); nothing else is changed."""
    return s.upper()


def _resident_id_problem(s: object, today: date | None) -> str | None:
    if not isinstance(s, str):
        return "invalid resident ID number (format)"
    s = normalise_resident_id(s)
    if not _ID_SHAPE.fullmatch(s):
        return "invalid resident ID number (format)"
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return "invalid resident ID number (birth date)"
    if born.year < 1900 or born > (today or date.today()):
        return "invalid resident ID number (birth date)"
    if resident_id_check_char(s[:17]) != s[17]:
        return "invalid resident ID number (check digit)"
    return None


def is_valid_resident_id(s: object, *, today: date | None = None) -> bool:
    """True for an 18-character ID number with a real birth date (1900..today) and check digit.

    A lower-case 'x' check character is accepted.
    """
    return _resident_id_problem(s, today) is None


# --- Mobile numbers ------------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_SEPARATORS = re.compile(r"[\s-]")


def normalise_mobile(s: object) -> str | None:
    """The 11-digit form of a mainland mobile number, or None if it is not one.

    Accepts an optional '+86' / '86' prefix and spaces or hyphens anywhere.
    """
    if not isinstance(s, str):
        return None
    digits = _MOBILE_SEPARATORS.sub("", s)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if digits.isascii() and _MOBILE.fullmatch(digits) else None


def is_valid_mobile(s: object) -> bool:
    return normalise_mobile(s) is not None


# --- Masking -------------------------------------------------------------------------------


def mask_resident_id(s: str) -> str:
    """Keep the first 4 and last 4 characters: '3604**********0071'."""
    if len(s) <= 8:
        return "*" * len(s)
    return s[:4] + "*" * (len(s) - 8) + s[-4:]


def mask_mobile(s: str) -> str:
    """Keep the first 3 and last 4 digits: '138****8000'. Separators and prefix are dropped."""
    digits = normalise_mobile(s) or re.sub(r"\D", "", s)
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
# An 18-character upper-case token: kept if it is a valid USCC that cannot be an ID number.
_TOKEN_18 = re.compile(rf"{_NOT_ALNUM_BEFORE}[0-9A-Z]{{18}}{_NOT_ALNUM_AFTER}")
# ID-number shape: 17 digits + digit/X/x, not part of a longer run of digits or letters.
_ID_LIKE = rf"(?P<id>{_NOT_ALNUM_BEFORE}[0-9]{{17}}[0-9Xx]{_NOT_ALNUM_AFTER})"
# Mobile shape, optional +86/0086/86 prefix, optionally grouped 3-4-4 with spaces or hyphens,
# not part of a longer run of digits.
_MOBILE_LIKE = (
    r"(?<![0-9])(?P<prefix>(?:(?:\+|00)?86[ -]?)?)"
    r"(?P<mobile>1[3-9][0-9](?:[ -]?[0-9]{4}){2})(?![0-9])"
)
_ID_OR_MOBILE = re.compile(f"{_ID_LIKE}|{_MOBILE_LIKE}")


def _mask_match(m: re.Match[str]) -> str:
    if m.group("id") is not None:
        return mask_resident_id(m.group("id"))
    return m.group("prefix") + mask_mobile(m.group("mobile"))


def mask_personal_data(text: str) -> str:
    """Mask every ID-number-like and mobile-like substring of `text`, valid or not.

    Valid USCCs with letters in the body and longer digit runs (invoice numbers) are left alone.
    The USCCs are set aside first and the text between them is masked on its own, so a grouped
    mobile shape cannot reach into a USCC ('130 00000000A00000000H' keeps its USCC); the text next
    to a USCC token is never alphanumeric, so no shape is cut at the seams.
    """
    masked: list[str] = []
    done = 0
    for token in _TOKEN_18.finditer(text):
        if not token.group()[:17].isdigit() and is_valid_uscc(token.group()):
            masked += (_ID_OR_MOBILE.sub(_mask_match, text[done:token.start()]), token.group())
            done = token.end()
    masked.append(_ID_OR_MOBILE.sub(_mask_match, text[done:]))
    return "".join(masked)


# Fields that hold an ID or mobile number by contract (CONTRACTS.md: `legal_representative.id_number`,
# `contact.mobile`, `contact.id_number`, the SMS receipt's `mobile`), the same under a prefix
# (`contact_mobile`, `legalRepIdNumber`) and phones: their values are masked whatever they look
# like, so that a malformed number (the very input a DLQ receives) is masked too.
_PERSONAL_NAME = r"[0-9a-z_]*(?:mobile|phone|id_?number)"
_PERSONAL_KEY = re.compile(_PERSONAL_NAME, re.IGNORECASE)
# Money is integer fen (`*_fen`, CONTRACTS.md): an amount is never a personal number, even when its
# digits have a mobile's shape (an award of 139 000 000.00 CNY), and review validates it afterwards.
_MONEY_KEY = re.compile(r"[0-9A-Za-z_]*_fen")


def is_personal_field(key: object) -> bool:
    """True for a field name that holds an ID or mobile number: `mobile`, `id_number`, `phone`, and
    names ending so (`contact_mobile`, `legalRepIdNumber`)."""
    return isinstance(key, str) and _PERSONAL_KEY.fullmatch(key) is not None


def mask_personal_value(text: str) -> str:
    """A personal field's value masked whatever it looks like: an ID or mobile number as
    `mask_personal_data` masks it; anything else (a 10-digit mobile, an ID with a letter in front,
    two numbers in one field) keeps at most its first 3 and last 4 characters, no more than a masked
    mobile shows, and nothing when shorter than a mobile."""
    if (shaped := _ID_OR_MOBILE.fullmatch(text)) is not None:
        return _mask_match(shaped)
    if len(text) < 11:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def mask_personal_number(value: int | float, *, personal: bool) -> int | float | str:
    """A number as the log processor masks an int (`subsidy.logging`): kept unless its digits look
    like an ID or mobile number (a personal field's always masked), then the masked digits as a
    string."""
    text = str(value) if isinstance(value, int) else repr(value)
    if personal:
        return mask_personal_value(text)
    masked = mask_personal_data(text)
    return value if masked == text else masked


def mask_personal_data_in(value: Any, *, personal: bool = False) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with its ID and mobile numbers masked,
    for what enters the platform inside a body (a request kept for the audit, a dead letter):
    every string and number as the log processor masks it (`mask_personal_data`, a number by its
    digits), keys too; and every value of a personal field (`is_personal_field`, `personal=True`
    below one) by `mask_personal_value`, whatever it looks like. Amounts (`*_fen`) stay numbers."""
    if isinstance(value, str):
        return mask_personal_value(value) if personal else mask_personal_data(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return mask_personal_number(value, personal=personal)
    if isinstance(value, dict):
        return {_mask_key(key): _mask_item(key, item, personal) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_personal_data_in(item, personal=personal) for item in value)
    return value


def _mask_key(key: Any) -> Any:
    return mask_personal_data(key) if isinstance(key, str) else key


def _mask_item(key: Any, item: Any, personal: bool) -> Any:
    if not personal and isinstance(item, int) and not isinstance(item, bool) and isinstance(key, str) and _MONEY_KEY.fullmatch(key):
        return item
    return mask_personal_data_in(item, personal=personal or is_personal_field(key))


# A personal field and its value (a JSON string, closed or cut off, or a number) in text that is not
# JSON as a whole: a dead letter that is not valid JSON is masked by field name too.
_PERSONAL_FIELD_IN_TEXT = re.compile(
    rf'(?P<key>"{_PERSONAL_NAME}"\s*:\s*)'
    r'(?:"(?P<string>(?:[^"\\]|\\.)*)(?P<close>"?)|(?P<number>-?[0-9][0-9.eE+-]*))',
    re.IGNORECASE,
)


def mask_personal_text(text: str) -> str:
    """Text that should be JSON but is not (a dead letter cut short, nested too deeply): every
    ID and mobile number masked by `mask_personal_data`, and every personal field's value by
    `mask_personal_value`, whatever it looks like."""

    def by_name(m: re.Match[str]) -> str:
        if m.group("number") is not None:
            return m.group("key") + '"' + mask_personal_value(m.group("number")) + '"'
        return m.group("key") + '"' + mask_personal_value(m.group("string")) + m.group("close")

    return mask_personal_data(_PERSONAL_FIELD_IN_TEXT.sub(by_name, text))


# --- Pydantic types ------------------------------------------------------------------------

FreeText = Annotated[str, AfterValidator(mask_personal_data)]
"""Free text people type (a withdrawal's reason, an official's reasons): stored, recorded in
workflow histories and published only with its ID and mobile numbers masked (issue 14, defect 8)."""


def _validate_uscc(v: str) -> str:
    if (problem := _uscc_problem(v)) is not None:
        raise InvalidIdentifierError(problem)
    return v


def _validate_resident_id(v: str) -> str:
    if (problem := _resident_id_problem(v, None)) is not None:
        raise InvalidIdentifierError(problem)
    return normalise_resident_id(v)


def _validate_mobile(v: str) -> str:
    normalised = normalise_mobile(v)
    if normalised is None:
        raise InvalidIdentifierError("invalid mobile number")
    return normalised


USCC = Annotated[str, AfterValidator(_validate_uscc)]
"""A valid Unified Social Credit Code."""
ResidentId = Annotated[str, AfterValidator(_validate_resident_id)]
"""A valid resident ID number, check character upper-cased."""
Mobile = Annotated[str, AfterValidator(_validate_mobile)]
"""A valid mainland mobile number, normalised to 11 digits."""
