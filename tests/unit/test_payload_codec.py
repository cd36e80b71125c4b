"""Temporal payloads encrypted by the one data converter when keys are configured (issue 14,
defect 8): ciphertext with a key id for rotation, clear payloads (recorded histories) still open."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime

import pytest
from temporalio.api.common.v1 import Payload

from subsidy.contracts.lifecycle import Actor, Role, Withdraw
from subsidy.payload_codec import ENCODING, EncryptionCodec, PayloadKeyError, codec_from_keys, generate_dev_payload_keys
from subsidy.settings import PlatformSettings
from subsidy.temporal import DATA_CONVERTER, data_converter

MARKER = "企业主动撤回-MARKER-7f3a"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _withdraw() -> Withdraw:
    return Withdraw(actor=Actor(id="portal:longgang-qyfw", role=Role.PORTAL), withdrawn_at=datetime.now(UTC), reason=MARKER)


async def test_payloads_leave_as_ciphertext_with_their_key_id_and_come_back_whole() -> None:
    converter = data_converter({"2026-11": _key()})
    [payload] = await converter.encode([_withdraw()])
    assert payload.metadata["encoding"] == ENCODING and payload.metadata["encryption-key-id"] == b"2026-11"
    assert MARKER.encode() not in payload.SerializeToString() and b"json" not in payload.SerializeToString()
    original = _withdraw()
    [sealed] = await converter.encode([original])
    assert await converter.decode([sealed], [Withdraw]) == [original]


async def test_without_keys_the_converter_is_the_clear_one_and_clear_payloads_still_decode_with_keys() -> None:
    assert data_converter() is DATA_CONVERTER and data_converter({}) is DATA_CONVERTER
    [clear] = await DATA_CONVERTER.encode([_withdraw()])
    assert MARKER.encode() in clear.data  # what the recorded histories hold
    [opened] = await data_converter({"k": _key()}).decode([clear], [Withdraw])
    assert opened.reason == MARKER


async def test_rotation_old_payloads_open_with_the_old_key_kept_and_not_without_it() -> None:
    old, new = _key(), _key()
    [sealed_old] = await data_converter({"old": old}).encode([_withdraw()])
    rotated = data_converter({"old": old, "new": new}, "new")
    [sealed_new] = await rotated.encode([_withdraw()])
    assert sealed_new.metadata["encryption-key-id"] == b"new"
    assert [w.reason for w in await rotated.decode([sealed_old, sealed_new], [Withdraw, Withdraw])] == [MARKER, MARKER]
    with pytest.raises(PayloadKeyError, match="old"):
        await data_converter({"new": new}).payload_codec.decode([sealed_old])  # type: ignore[union-attr]


async def test_a_tampered_payload_or_swapped_key_id_does_not_open() -> None:
    codec = EncryptionCodec({"a": os.urandom(32), "b": os.urandom(32)}, "a")
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    flipped = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    swapped = Payload(metadata={**dict(sealed.metadata), "encryption-key-id": b"b"}, data=sealed.data)
    for bad in (flipped, swapped):
        with pytest.raises(Exception):
            await codec.decode([bad])


def test_keys_are_checked_and_never_echoed() -> None:
    assert codec_from_keys({}) is None
    with pytest.raises(PayloadKeyError) as short:
        codec_from_keys({"k": base64.b64encode(b"short").decode()})
    assert "TEMPORAL_PAYLOAD_KEYS['k']" in str(short.value) and "c2hvcnQ" not in str(short.value)
    with pytest.raises(PayloadKeyError):
        codec_from_keys({"a": _key(), "b": _key()})  # which one is active?
    with pytest.raises(PayloadKeyError):
        codec_from_keys({"a": _key()}, "b")


def test_the_settings_read_the_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = generate_dev_payload_keys()
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    settings = PlatformSettings()
    assert set(settings.temporal_payload_keys) == set(json.loads(keys["TEMPORAL_PAYLOAD_KEYS"]))
    assert settings.temporal_payload_active_key_id == keys["TEMPORAL_PAYLOAD_ACTIVE_KEY_ID"]
    assert "SecretStr" in repr(settings.temporal_payload_keys) or "**" in repr(settings.temporal_payload_keys)
