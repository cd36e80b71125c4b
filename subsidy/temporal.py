"""One way to reach Temporal: every client (services, worker, CLI, tests) uses the pydantic data
converter, so workflow and activity payloads are the contracts' pydantic models (dates, aware
datetimes, enums and integer fen survive the trip exactly).

Production reaches its Temporal frontend over mutual TLS: `TEMPORAL_TLS_CERT` and
`TEMPORAL_TLS_KEY` (the platform's client certificate and key, PEM files) and, if the server's
certificate is not signed by a public CA, `TEMPORAL_TLS_CA`. Without them the connection is plain
(the embedded stack's dev server listens on loopback only).

With `TEMPORAL_PAYLOAD_KEYS` set, the data converter also encrypts every payload (AES-256-GCM,
subsidy/payload_codec.py): the server stores and shows only ciphertext. Every process that connects
must hold the same keys; payloads in clear (older histories) still decode.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from subsidy.payload_codec import codec_from_keys

# Payloads in clear: the time-skipping tests and the replay of recorded histories.
DATA_CONVERTER = pydantic_data_converter


def data_converter(payload_keys: Mapping[str, str] | None = None, active_key_id: str | None = None) -> DataConverter:
    """The one data converter: pydantic payloads, encrypted when there are payload keys."""
    codec = codec_from_keys(payload_keys or {}, active_key_id)
    return DATA_CONVERTER if codec is None else dataclasses.replace(DATA_CONVERTER, payload_codec=codec)


async def connect(
    address: str,
    namespace: str = "default",
    tls: TLSConfig | bool = False,
    *,
    payload_keys: Mapping[str, str] | None = None,
    payload_active_key_id: str | None = None,
) -> Client:
    return await Client.connect(
        address, namespace=namespace, tls=tls, data_converter=data_converter(payload_keys, payload_active_key_id)
    )


async def connect_from_env(env: Mapping[str, str]) -> Client:
    """Connect as a process of the platform would with this environment (the CLI, tests, benches):
    TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_PAYLOAD_KEYS, TEMPORAL_PAYLOAD_ACTIVE_KEY_ID."""
    keys = json.loads(env.get("TEMPORAL_PAYLOAD_KEYS") or "{}")
    return await connect(
        env.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"), env.get("TEMPORAL_NAMESPACE", "default"),
        payload_keys=keys, payload_active_key_id=env.get("TEMPORAL_PAYLOAD_ACTIVE_KEY_ID") or None,
    )


def tls_config(cert: str | None, key: str | None, ca: str | None) -> TLSConfig | bool:
    """The TLS settings of the Temporal client from PEM file paths; False when none is set."""
    if not (cert or key or ca):
        return False
    if bool(cert) != bool(key):
        raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (a client certificate and its key)")
    return TLSConfig(
        server_root_ca_cert=Path(ca).read_bytes() if ca else None,
        client_cert=Path(cert).read_bytes() if cert else None,
        client_private_key=Path(key).read_bytes() if key else None,
    )


async def connect_from_settings(settings: Any) -> Client:
    """Connect as the settings say (address, namespace, TLS): what every process of the platform uses."""
    tls = tls_config(
        getattr(settings, "temporal_tls_cert", None),
        getattr(settings, "temporal_tls_key", None),
        getattr(settings, "temporal_tls_ca", None),
    )
    keys = {kid: secret.get_secret_value() for kid, secret in (getattr(settings, "temporal_payload_keys", None) or {}).items()}
    return await connect(
        settings.temporal_address, settings.temporal_namespace, tls,
        payload_keys=keys, payload_active_key_id=getattr(settings, "temporal_payload_active_key_id", None) or None,
    )
