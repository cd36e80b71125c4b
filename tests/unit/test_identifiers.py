from __future__ import annotations

from datetime import date

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from subsidy.identifiers import (
    USCC,
    USCC_CHARSET,
    Mobile,
    ResidentId,
    is_valid_mobile,
    is_valid_resident_id,
    is_valid_uscc,
    mask_mobile,
    mask_personal_data,
    mask_personal_data_in,
    mask_resident_id,
    normalise_mobile,
    resident_id_check_char,
    uscc_check_char,
)

TODAY = date(2025, 12, 9)
DIGITS = "0123456789"
LETTERS = "".join(c for c in USCC_CHARSET if not c.isdigit())

# --- strategies ----------------------------------------------------------------------------

uscc_bodies = st.builds(
    lambda head, division, org: head + division + org,
    st.text(USCC_CHARSET, min_size=2, max_size=2),
    st.text(DIGITS, min_size=6, max_size=6),
    st.text(USCC_CHARSET, min_size=9, max_size=9),
)
usccs = uscc_bodies.map(lambda body: body + uscc_check_char(body))
# A USCC with a letter in its body can never be taken for an ID number.
usccs_with_letters = usccs.filter(lambda s: any(c in LETTERS for c in s[:17]))

birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
id_bodies = st.builds(
    lambda region, born, seq: f"{region}{born:%Y%m%d}{seq:03d}",
    st.text(DIGITS, min_size=6, max_size=6),
    birth_dates,
    st.integers(0, 999),
)
resident_ids = id_bodies.map(lambda body: body + resident_id_check_char(body))
mobiles = st.builds(
    lambda second, rest: f"1{second}{rest}",
    st.sampled_from("3456789"),
    st.text(DIGITS, min_size=9, max_size=9),
)
# Arbitrary text around the values; the test joins with spaces so each value is its own token.
filler = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    | st.sampled_from("申请人手机号码：,;"),
    max_size=30,
)


# --- USCC ----------------------------------------------------------------------------------


def test_uscc_examples() -> None:
    assert is_valid_uscc("91110000600037341L")
    assert uscc_check_char("91110000600037341") == "L"
    assert is_valid_uscc("91440300MA5G12345L")
    assert not is_valid_uscc("91110000600037341M")
    assert not is_valid_uscc("91110000600037341")  # too short
    assert not is_valid_uscc("91110000600037341l")  # lower case
    assert not is_valid_uscc("9111000060003734IL")  # I is not in the charset
    assert not is_valid_uscc(None)


@given(usccs)
def test_uscc_with_computed_check_char_is_valid(code: str) -> None:
    assert is_valid_uscc(code)


@given(uscc_bodies, st.sampled_from(USCC_CHARSET))
def test_uscc_with_any_other_check_char_is_invalid(body: str, check: str) -> None:
    assume(check != uscc_check_char(body))
    assert not is_valid_uscc(body + check)


@given(usccs, st.integers(2, 7), st.sampled_from(LETTERS))
def test_uscc_division_code_must_be_digits(code: str, position: int, letter: str) -> None:
    body = code[:position] + letter + code[position + 1 : 17]
    assert not is_valid_uscc(body + uscc_check_char(body))


# --- Resident ID number --------------------------------------------------------------------


def test_resident_id_examples() -> None:
    assert is_valid_resident_id("360426199101010071")
    assert resident_id_check_char("36042619910101007") == "1"
    assert is_valid_resident_id("440307199003071239")
    assert is_valid_resident_id("440307198512154564")
    assert not is_valid_resident_id("360426199101010072")
    assert not is_valid_resident_id("36042619910101007")
    assert not is_valid_resident_id(360426199101010071)


def _body_with_x_check() -> str:
    return next(
        body
        for body in (f"11010119900101{seq:03d}" for seq in range(1000))
        if resident_id_check_char(body) == "X"
    )


def test_resident_id_lower_case_x_is_accepted() -> None:
    body = _body_with_x_check()
    assert is_valid_resident_id(body + "x")
    assert is_valid_resident_id(body + "X")


@given(resident_ids)
def test_resident_id_with_computed_check_is_valid(number: str) -> None:
    assert is_valid_resident_id(number, today=TODAY)


@given(id_bodies, st.sampled_from("0123456789X"))
def test_resident_id_with_wrong_check_is_invalid(body: str, check: str) -> None:
    assume(check != resident_id_check_char(body))
    assert not is_valid_resident_id(body + check, today=TODAY)


@pytest.mark.parametrize("born", ["19910230", "19911301", "19910001", "18991231", "20251210"])
def test_resident_id_impossible_birth_date_is_invalid(born: str) -> None:
    body = f"360426{born}007"
    assert not is_valid_resident_id(body + resident_id_check_char(body), today=TODAY)


# --- Mobile --------------------------------------------------------------------------------


MOBILE_FORMS = ["{0}", "+86{0}", "86{0}", "+86 {0}", "{1} {2} {3}", "{1}-{2}-{3}"]


@given(mobiles, st.sampled_from(MOBILE_FORMS))
def test_mobile_forms_normalise(mobile: str, form: str) -> None:
    text = form.format(mobile, mobile[:3], mobile[3:7], mobile[7:])
    assert normalise_mobile(text) == mobile
    assert is_valid_mobile(text)


@pytest.mark.parametrize(
    "text",
    [
        "12800138000",
        "1380013800",
        "138001380001",
        "23800138000",
        "+85213800138000",
        "",
        "１３８００１３８０００",  # full-width digits
    ],
)
def test_not_mobiles(text: str) -> None:
    assert normalise_mobile(text) is None
    assert not is_valid_mobile(text)


# --- Masking -------------------------------------------------------------------------------


def test_mask_helpers() -> None:
    assert mask_resident_id("360426199101010071") == "3604**********0071"
    assert mask_mobile("13800138000") == "138****8000"


def test_mask_personal_data_examples() -> None:
    text = (
        "法人 360426199101010071 联系 +8613800138000, 13912345678；"
        "USCC 91440300MA5G12345L 发票 25442000000012345678 ID(bad check) 360426199101010072"
    )
    assert mask_personal_data(text) == (
        "法人 3604**********0071 联系 +86138****8000, 139****5678；"
        "USCC 91440300MA5G12345L 发票 25442000000012345678 ID(bad check) 3604**********0072"
    )


@given(
    filler,
    resident_ids,
    filler,
    mobiles,
    filler,
    usccs_with_letters,
    filler,
    st.text(DIGITS, min_size=20, max_size=20),
)
# Found by hypothesis: "130" then a USCC starting with 8 digits looked like a grouped mobile "130 0000 0000".
@example("", "000000200001010005", "", "13000000000", "130", "00000000A00000000H", "", "0" * 20)
def test_mask_personal_data_hides_ids_and_mobiles_keeps_uscc_and_invoice(
    a: str, number: str, b: str, mobile: str, c: str, code: str, d: str, invoice: str
) -> None:
    text = " ".join([a, number, b, mobile, c, code, d, invoice])
    masked = mask_personal_data(text)
    # Compared token by token: the USCC or invoice number may contain the same digits by chance.
    tokens = masked.split()
    assert number not in tokens
    assert mobile not in tokens
    assert mask_resident_id(number) in masked
    assert mask_mobile(mobile) in masked
    assert code in masked
    assert invoice in masked


@given(resident_ids.map(lambda s: s[:17] + s[17].lower()))
def test_mask_personal_data_catches_lower_case_x(number: str) -> None:
    assert number not in mask_personal_data(f"id={number}")


# --- Masking inside bodies (a dead letter, a request kept for the audit) -------------------


def test_numbers_are_masked_as_the_log_processor_masks_them() -> None:
    from subsidy.logging import _mask

    body = {"note": 13800138000, "other": 440307199003071239, "tel": 13912345678.0}
    masked = mask_personal_data_in(body)
    assert masked["note"] == _mask(13800138000) == "138****8000"
    assert masked["other"] == _mask(440307199003071239) == "4403**********1239"
    assert "13912345678" not in str(masked["tel"])


def test_personal_fields_are_masked_whatever_their_value_looks_like() -> None:
    body = {
        "contact": {"name": "李四", "mobile": 13800138000, "id_number": "ID440307199003071239"},
        "legal_representative": {"name": "张三", "id_number": 440307199003071239},
        "sms": [{"mobile": "1380013800"}, {"mobile": 4403071990030712391}],
        "contact_mobile": "138-0013-800", "legalRepIdNumber": "4403071990030712391", "phone": ["0755 8888 1234"],
    }
    masked = mask_personal_data_in(body)
    text = repr(masked)
    for raw in ("13800138000", "440307199003071239", "1380013800", "4403071990030712391", "0013", "8888"):
        assert raw not in text, raw
    assert masked["contact"]["mobile"] == "138****8000"  # a valid number: as the logs show it
    assert masked["legal_representative"]["id_number"] == "4403**********1239"
    assert masked["contact"]["id_number"] == "ID4*************1239"  # malformed: at most 3 + 4 characters kept
    assert masked["sms"][0]["mobile"] == "**********"  # shorter than a mobile: nothing kept
    assert masked["contact"]["name"] == "李四"


def test_amounts_counts_and_flags_stay_as_they_are() -> None:
    body = {"amount_fen": 13800138000, "award_fen": 150000000, "copies": 2, "pages": 12, "level": 3,
            "is_branch": False, "mobile_verified": True, "error_code": None, "ratio": 0.5}
    assert mask_personal_data_in(body) == body


# --- Pydantic types ------------------------------------------------------------------------


class _Person(BaseModel):
    uscc: USCC | None = None
    id_number: ResidentId | None = None
    mobile: Mobile | None = None


def test_annotated_types_normalise() -> None:
    body = _body_with_x_check()
    person = _Person(id_number=body + "x", mobile="+86 138-0013-8000", uscc="91110000600037341L")
    assert person.id_number == body + "X"
    assert person.mobile == "13800138000"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uscc", "91110000600037341M", "invalid USCC (check character)"),
        ("id_number", "360426199101010072", "invalid resident ID number (check digit)"),
        ("id_number", "360426199102300071", "invalid resident ID number (birth date)"),
        ("mobile", "12800138000", "invalid mobile number"),
    ],
)
def test_annotated_type_errors_do_not_echo_the_value(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        _Person.model_validate({field: value})
    (error,) = info.value.errors()
    assert message in error["msg"]
    assert value not in error["msg"]
