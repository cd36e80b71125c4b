"""Temporal payloads encrypted before they leave the process (issue 14, defect 8).

Workflow inputs, update arguments, activity inputs and results, queries and signals are stored by
the Temporal server in its history (and shown by its UI). With `TEMPORAL_PAYLOAD_KEYS` set, every
client and worker of the platform (one data converter: subsidy/temporal.py) seals each payload with
AES-256-GCM before it is sent and opens it when it comes back: the server, its database and its UI
only ever see ciphertext (the UI shows `binary/encrypted`).

- Keys: `TEMPORAL_PAYLOAD_KEYS`, a JSON object key id -> base64 of 32 random bytes (like
  `PERSONAL_DATA_KEYS`, but a key set of its own: every process that talks to Temporal holds it,
  while the personal-data keys stay with the services that hold personal data).
  `TEMPORAL_PAYLOAD_ACTIVE_KEY_ID` names the key new payloads are sealed with (default: the only key).
- Format: metadata `encoding: binary/encrypted` and `encryption-key-id: <kid>`; data = 12-byte
  nonce + ciphertext of the whole original Payload (its metadata too, so the JSON encoding and the
  message type are hidden as well). The key id is bound as associated data.
- Rotation: add a new key, make it active everywhere, keep the old one while any workflow still
  running (or any history you may replay) holds payloads sealed with it.
- Compatibility: a payload without the `binary/encrypted` marker passes through decode unchanged,
  so histories recorded in clear (tests/workflows/histories, workflows started before the keys)
  still replay, and a process without keys still runs against a server with clear payloads.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from subsidy.crypto import decode_key

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(Exception):
    """A payload sealed with a key this process does not hold, or keys that are not usable."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads, with the key id in the metadata for rotation."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise PayloadKeyError("TEMPORAL_PAYLOAD_ACTIVE_KEY_ID names no key of TEMPORAL_PAYLOAD_KEYS")
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active = active_key_id

    def __repr__(self) -> str:
        return f"EncryptionCodec(key_ids={sorted(self._aeads)}, active={self._active!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) for p in payloads]

    def _seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        kid = self._active
        sealed = self._aeads[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=nonce + sealed)

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # recorded in clear (before the keys, or by a process without them)
        kid = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        aead = self._aeads.get(kid)
        if aead is None:
            raise PayloadKeyError(f"payload sealed with key {kid[:40]!r}, which TEMPORAL_PAYLOAD_KEYS does not hold")
        data = payload.data
        return Payload.FromString(aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], kid.encode()))


def codec_from_keys(keys: Mapping[str, str], active_key_id: str | None = None) -> EncryptionCodec | None:
    """The codec of base64 keys (key id -> key); None when there is no key (payloads in clear)."""
    if not keys:
        return None
    decoded = {kid: _key(kid, text) for kid, text in keys.items()}
    if active_key_id is None:
        if len(decoded) != 1:
            raise PayloadKeyError("TEMPORAL_PAYLOAD_ACTIVE_KEY_ID must name the active key when there are several")
        active_key_id = next(iter(decoded))
    return EncryptionCodec(decoded, active_key_id)


def _key(kid: str, text: str) -> bytes:
    try:
        return decode_key(text, f"TEMPORAL_PAYLOAD_KEYS[{kid[:40]!r}]")
    except Exception as exc:  # PersonalDataError names the setting, never the value
        raise PayloadKeyError(str(exc)) from None


def generate_dev_payload_keys() -> dict[str, str]:
    """Environment values for a fresh payload key (the embedded stack makes one per run directory).
    Development only: production keys come from the secret store."""
    kid = f"dev-{secrets.token_hex(4)}"
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    return {"TEMPORAL_PAYLOAD_KEYS": json.dumps({kid: key}), "TEMPORAL_PAYLOAD_ACTIVE_KEY_ID": kid}


if __name__ == "__main__":  # python -m subsidy.payload_codec >> .env   (a development key)
    for name, value in generate_dev_payload_keys().items():
        print(f"{name}='{value}'")
