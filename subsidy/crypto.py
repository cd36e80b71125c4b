"""Personal data at rest: resident ID numbers and mobile numbers, encrypted and hashed for lookups.

- Encryption: AES-256-GCM (`cryptography`'s `AESGCM`), a fresh random 12-byte nonce per value.
  A sealed value is `{"kid": key id, "nonce": base64, "ct": base64}` (ciphertext + tag), stored
  as JSON. The `context` (e.g. `"LG2025-000123:applicant.contact.mobile"`) is the associated
  data: a ciphertext copied to another field or application does not decrypt.
- Rotation: every key stays in `PERSONAL_DATA_KEYS` (key id -> base64 key) while data sealed with
  it exists; new values are sealed with `PERSONAL_DATA_ACTIVE_KEY_ID`. Re-sealing old values is a
  batch job that decrypts and encrypts again; the key id in each value says which ones are due.
- Lookups: `lookup_hash` is a keyed HMAC-SHA256 of the normalised value (`PERSONAL_DATA_HASH_KEY`),
  deterministic, so equality queries work without decrypting. Changing the hash key means
  recomputing every stored hash.

No error raised here contains a plaintext, a key or a ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from subsidy.identifiers import normalise_mobile, normalise_resident_id
from subsidy.settings import PlatformSettings, json_object_of_strings

__all__ = [
    "KEY_BYTES",
    "LookupKind",
    "PersonalDataCipher",
    "PersonalDataError",
    "PersonalDataSettings",
    "SealedValue",
    "cipher_from_settings",
    "generate_dev_keys",
]

KEY_BYTES = 32  # AES-256; the hash key has the same length
NONCE_BYTES = 12
LookupKind = Literal["mobile", "id_number"]
SealedValue = dict[str, str]
"""`{"kid": ..., "nonce": base64, "ct": base64}`: what is stored for one value."""


class PersonalDataError(Exception):
    """A value cannot be sealed, opened or hashed, or a key is unusable. Never carries the value."""


class PersonalDataCipher:
    """Seals and opens personal data; computes lookup hashes. Thread-safe and stateless per call."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str, hash_key: bytes) -> None:
        if not keys:
            raise PersonalDataError("no encryption key configured")
        for kid, key in keys.items():
            if not kid or len(key) != KEY_BYTES:
                raise PersonalDataError(f"key {kid[:40]!r} must be {KEY_BYTES} bytes")
        if active_key_id not in keys:
            raise PersonalDataError(f"active key id {active_key_id[:40]!r} is not among the keys")
        if len(hash_key) != KEY_BYTES:
            raise PersonalDataError(f"the hash key must be {KEY_BYTES} bytes")
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active_key_id = active_key_id
        self._hash_key = hash_key

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    def __repr__(self) -> str:
        return f"PersonalDataCipher(key_ids={sorted(self._aeads)}, active={self._active_key_id!r})"

    def encrypt(self, plaintext: str, *, context: str) -> SealedValue:
        """Seal `plaintext` with the active key, bound to `context` (field and application)."""
        if not context:
            raise PersonalDataError("a context is required (it binds the value to its field)")
        nonce = secrets.token_bytes(NONCE_BYTES)
        ct = self._aeads[self._active_key_id].encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return {"kid": self._active_key_id, "nonce": _b64(nonce), "ct": _b64(ct)}

    def decrypt(self, sealed: Mapping[str, object], *, context: str) -> str:
        """Open a value sealed by `encrypt` under the same `context`, with whichever key sealed it."""
        kid, nonce_text, ct_text = sealed.get("kid"), sealed.get("nonce"), sealed.get("ct")
        if not isinstance(kid, str) or not isinstance(nonce_text, str) or not isinstance(ct_text, str):
            raise PersonalDataError("sealed value must have string fields kid, nonce and ct")
        aead = self._aeads.get(kid)
        if aead is None:
            raise PersonalDataError(f"unknown key id {kid[:40]!r} (a retired key still in use?)")
        try:
            nonce, ct = _unb64(nonce_text), _unb64(ct_text)
        except ValueError:
            raise PersonalDataError("sealed value is not base64") from None
        if len(nonce) != NONCE_BYTES:
            raise PersonalDataError("sealed value has a nonce of the wrong length")
        try:
            plaintext = aead.decrypt(nonce, ct, context.encode("utf-8"))
        except InvalidTag:
            raise PersonalDataError(
                "sealed value does not open: tampered, another field's or application's value, or the wrong key"
            ) from None
        return plaintext.decode("utf-8")

    def lookup_hash(self, kind: LookupKind, value: str) -> str:
        """Hex HMAC-SHA256 over `kind:normalised value`, for equality lookups.

        Mobiles are normalised to 11 digits ('+86 138-0013-8000' == '13800138000'); ID numbers
        are stripped and upper-cased. A value that is not a mobile number is an error.
        """
        if kind == "mobile":
            normalised = normalise_mobile(value)
            if normalised is None:
                raise PersonalDataError("value is not a mobile number")
        elif kind == "id_number":
            normalised = normalise_resident_id(value.strip())
        else:
            raise PersonalDataError(f"unknown lookup kind {str(kind)[:40]!r}")
        message = f"{kind}:{normalised}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()


# --- Settings ------------------------------------------------------------------------------


class HasPersonalDataKeys(Protocol):
    """The settings fields `cipher_from_settings` reads (PersonalDataSettings below has them)."""

    @property
    def personal_data_keys(self) -> Mapping[str, SecretStr]: ...
    @property
    def personal_data_active_key_id(self) -> str: ...
    @property
    def personal_data_hash_key(self) -> SecretStr: ...


def cipher_from_settings(settings: HasPersonalDataKeys) -> PersonalDataCipher:
    """The cipher of PERSONAL_DATA_KEYS, PERSONAL_DATA_ACTIVE_KEY_ID and PERSONAL_DATA_HASH_KEY.

    Errors name the setting (and the key id), never the value.
    """
    keys = {
        kid: decode_key(secret.get_secret_value(), f"PERSONAL_DATA_KEYS[{kid[:40]!r}]")
        for kid, secret in settings.personal_data_keys.items()
    }
    hash_key = decode_key(settings.personal_data_hash_key.get_secret_value(), "PERSONAL_DATA_HASH_KEY")
    if settings.personal_data_active_key_id not in keys:
        raise PersonalDataError("PERSONAL_DATA_ACTIVE_KEY_ID names no key of PERSONAL_DATA_KEYS")
    return PersonalDataCipher(keys, settings.personal_data_active_key_id, hash_key)


def decode_key(text: str, setting: str) -> bytes:
    """A base64 (standard or URL-safe) key of exactly 32 bytes, else an error naming `setting`."""
    try:
        key = _unb64(text.strip())
    except ValueError:
        raise PersonalDataError(f"{setting} is not base64") from None
    if len(key) != KEY_BYTES:
        raise PersonalDataError(f"{setting} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def generate_dev_keys() -> dict[str, str]:
    """Environment values for a fresh key set (one encryption key, one hash key). Development only:
    production keys come from the secret store."""
    kid = f"dev-{secrets.token_hex(4)}"
    return {
        "PERSONAL_DATA_KEYS": json.dumps({kid: _b64(secrets.token_bytes(KEY_BYTES))}),
        "PERSONAL_DATA_ACTIVE_KEY_ID": kid,
        "PERSONAL_DATA_HASH_KEY": _b64(secrets.token_bytes(KEY_BYTES)),
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    """Standard or URL-safe base64, padding required; ValueError otherwise."""
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


if __name__ == "__main__":  # python -m subsidy.crypto >> .env   (a development key set)
    for name, value in generate_dev_keys().items():
        print(f"{name}='{value}'")


# --- settings shared by the services that hold personal data (intake seals, notify opens) ---


class PersonalDataSettings(PlatformSettings):
    """The keys that seal resident ID and mobile numbers at rest (subsidy/crypto.py): intake seals
    them, notify opens the contact number to send an SMS. No defaults: a service holding personal
    data does not start without real keys (the embedded stack generates a development set)."""

    model_config = SettingsConfigDict(hide_input_in_errors=True)

    personal_data_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        description="PERSONAL_DATA_KEYS: JSON object key id -> base64 AES-256 key; old keys stay for rotation"
    )
    personal_data_active_key_id: str = Field(
        description="PERSONAL_DATA_ACTIVE_KEY_ID: the key of PERSONAL_DATA_KEYS new values are sealed with"
    )
    personal_data_hash_key: SecretStr = Field(
        description="PERSONAL_DATA_HASH_KEY: base64 32-byte HMAC key of the lookup hashes"
    )

    @field_validator("personal_data_keys", mode="before")
    @classmethod
    def _keys_json(cls, value: Any) -> Any:
        return json_object_of_strings(value, "PERSONAL_DATA_KEYS")

    @model_validator(mode="after")
    def _personal_data_keys_are_usable(self) -> Self:
        try:
            cipher_from_settings(self)
        except PersonalDataError as exc:
            raise ValueError(str(exc)) from None
        return self
