"""One way to reach Temporal: every client (services, worker, CLI, tests) uses the pydantic data
converter, so workflow and activity payloads are the contracts' pydantic models (dates, aware
datetimes, enums and integer fen survive the trip exactly).

Production reaches its Temporal frontend over mutual TLS: `TEMPORAL_TLS_CERT` and
`TEMPORAL_TLS_KEY` (the platform's client certificate and key, PEM files) and, if the server's
certificate is not signed by a public CA, `TEMPORAL_TLS_CA`. Without them the connection is plain
(the embedded stack's dev server listens on loopback only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

DATA_CONVERTER = pydantic_data_converter


async def connect(address: str, namespace: str = "default", tls: TLSConfig | bool = False) -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER, tls=tls)


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
    return await connect(settings.temporal_address, settings.temporal_namespace, tls)
