"""Personal data at rest: AES-GCM sealing bound to its field, key rotation, lookup hashes."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from subsidy.crypto import PersonalDataCipher, PersonalDataError, cipher_from_settings, generate_dev_keys
from tests.fixtures import events

K1, K2, HASH_KEY = (secrets.token_bytes(32) for _ in range(3))
MOBILE_CONTEXT = "LG2025-000123:applicant.contact.mobile"
ID_CONTEXT = "LG2025-000123:applicant.contact.id_number"


def cipher(active: str = "k1", keys: dict[str, bytes] | None = None) -> PersonalDataCipher:
    return PersonalDataCipher(keys or {"k1": K1, "k2": K2}, active, HASH_KEY)


def flip(text: str, index: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_round_trip() -> None:
    c = cipher()
    sealed = c.encrypt(events.CONTACT_MOBILE, context=MOBILE_CONTEXT)
    assert set(sealed) == {"kid", "nonce", "ct"} and sealed["kid"] == "k1"
    assert len(base64.b64decode(sealed["nonce"])) == 12
    assert events.CONTACT_MOBILE not in json.dumps(sealed)
    assert c.decrypt(sealed, context=MOBILE_CONTEXT) == events.CONTACT_MOBILE


def test_each_seal_has_its_own_nonce() -> None:
    c = cipher()
    a, b = (c.encrypt(events.CONTACT_ID, context=ID_CONTEXT) for _ in range(2))
    assert a["nonce"] != b["nonce"] and a["ct"] != b["ct"]


@pytest.mark.parametrize(
    "other_context",
    ["LG2025-000124:applicant.contact.mobile", "LG2025-000123:applicant.legal_representative.id_number", ""],
)
def test_a_sealed_value_opens_only_in_its_context(other_context: str) -> None:
    c = cipher()
    sealed = c.encrypt(events.CONTACT_MOBILE, context=MOBILE_CONTEXT)
    with pytest.raises(PersonalDataError):
        c.decrypt(sealed, context=other_context)


@pytest.mark.parametrize("part", ["nonce", "ct"])
@pytest.mark.parametrize("index", [0, -1])
def test_tampering_is_detected(part: str, index: int) -> None:
    c = cipher()
    sealed = c.encrypt(events.CONTACT_ID, context=ID_CONTEXT)
    with pytest.raises(PersonalDataError):
        c.decrypt({**sealed, part: flip(sealed[part], index)}, context=ID_CONTEXT)


@pytest.mark.parametrize(
    "sealed",
    [
        {"kid": "k9", "nonce": "AAAAAAAAAAAAAAAA", "ct": "AAAA"},
        {"kid": "k1", "nonce": "not base64!", "ct": "AAAA"},
        {"kid": "k1", "nonce": "AAAA", "ct": "AAAA"},
        {"kid": "k1", "ct": "AAAA"},
        {"kid": 1, "nonce": "AAAAAAAAAAAAAAAA", "ct": "AAAA"},
    ],
)
def test_malformed_or_unknown_key_is_an_error(sealed: dict) -> None:
    with pytest.raises(PersonalDataError):
        cipher().decrypt(sealed, context=ID_CONTEXT)


def test_rotation_keeps_old_values_readable() -> None:
    before = cipher(active="k1")
    old = before.encrypt(events.LEGAL_REP_ID, context=ID_CONTEXT)
    after = cipher(active="k2")
    new = after.encrypt(events.LEGAL_REP_ID, context=ID_CONTEXT)
    assert old["kid"] == "k1" and new["kid"] == "k2"
    assert after.decrypt(old, context=ID_CONTEXT) == events.LEGAL_REP_ID
    assert after.decrypt(new, context=ID_CONTEXT) == events.LEGAL_REP_ID
    retired = PersonalDataCipher({"k2": K2}, "k2", HASH_KEY)
    with pytest.raises(PersonalDataError, match="unknown key id"):
        retired.decrypt(old, context=ID_CONTEXT)


def test_lookup_hash_is_stable_keyed_and_normalising() -> None:
    c = cipher()
    h = c.lookup_hash("mobile", "13800138000")
    assert h == c.lookup_hash("mobile", "+86 138-0013-8000") == cipher(active="k2").lookup_hash("mobile", "138 0013 8000")
    assert len(h) == 64 and int(h, 16) >= 0
    assert h != PersonalDataCipher({"k1": K1}, "k1", secrets.token_bytes(32)).lookup_hash("mobile", "13800138000")
    assert c.lookup_hash("id_number", "44030719900307123x") == c.lookup_hash("id_number", "44030719900307123X")
    # the kind is part of the hashed message
    assert c.lookup_hash("id_number", "13800138000") != h


def test_errors_never_contain_plaintext_or_keys() -> None:
    c = cipher()
    sealed = c.encrypt(events.CONTACT_MOBILE, context=MOBILE_CONTEXT)
    messages = []
    for attempt in (
        lambda: c.decrypt(sealed, context="LG2025-000999:applicant.contact.mobile"),
        lambda: c.decrypt({**sealed, "ct": flip(sealed["ct"], 3)}, context=MOBILE_CONTEXT),
        lambda: c.lookup_hash("mobile", "1380013800"),  # one digit short: not a mobile
        lambda: c.lookup_hash("passport", events.CONTACT_MOBILE),  # type: ignore[arg-type]
    ):
        with pytest.raises(PersonalDataError) as info:
            attempt()
        messages.append(str(info.value) + repr(info.value))
    for message in messages:
        for secret in (events.CONTACT_MOBILE, "1380013800", sealed["ct"], base64.b64encode(K1).decode()):
            assert secret not in message
    assert base64.b64encode(K1).decode() not in repr(c) and K1.hex() not in repr(c)


def test_bad_keys_are_refused_with_the_setting_named_not_the_value() -> None:
    short = base64.b64encode(b"0123456789abcdef").decode()

    class Settings:
        personal_data_keys = {"2025-12": SecretStr(short)}
        personal_data_active_key_id = "2025-12"
        personal_data_hash_key = SecretStr(base64.b64encode(HASH_KEY).decode())

    with pytest.raises(PersonalDataError) as info:
        cipher_from_settings(Settings())
    assert "PERSONAL_DATA_KEYS['2025-12']" in str(info.value) and short not in str(info.value)

    Settings.personal_data_keys = {"2025-12": SecretStr("%%% not base64 %%%")}
    with pytest.raises(PersonalDataError, match="not base64"):
        cipher_from_settings(Settings())

    Settings.personal_data_keys = {"2025-12": SecretStr(base64.b64encode(K1).decode())}
    Settings.personal_data_active_key_id = "2026-01"
    with pytest.raises(PersonalDataError, match="PERSONAL_DATA_ACTIVE_KEY_ID"):
        cipher_from_settings(Settings())


def test_dev_keys_build_a_working_cipher(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.intake.settings import IntakeSettings

    for name, value in generate_dev_keys().items():
        monkeypatch.setenv(name, value)
    settings = IntakeSettings()
    assert "SecretStr('**********')" in repr(settings)
    c = cipher_from_settings(settings)
    sealed = c.encrypt(events.SMS_MOBILE, context="sms-7f3a9c:mobile")
    assert cipher_from_settings(IntakeSettings()).decrypt(sealed, context="sms-7f3a9c:mobile") == events.SMS_MOBILE
    assert generate_dev_keys() != generate_dev_keys()


def test_intake_refuses_to_start_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from services.intake.settings import IntakeSettings

    for name in ("PERSONAL_DATA_KEYS", "PERSONAL_DATA_ACTIVE_KEY_ID", "PERSONAL_DATA_HASH_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="personal_data_keys"):
        IntakeSettings()


@given(plaintext=st.text(), context=st.text(min_size=1, max_size=80))
def test_round_trip_over_any_text(plaintext: str, context: str) -> None:
    c = cipher()
    assert c.decrypt(c.encrypt(plaintext, context=context), context=context) == plaintext
