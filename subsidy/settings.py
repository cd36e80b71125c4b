"""Configuration shared by every process, read from the environment (pydantic-settings).

Each service extends `PlatformSettings` with its own fields in `services/<name>/settings.py`.
The names below are the contract with docker-compose.yml and deploy/k8s: a test checks
that every variable the compose file sets is one the code reads.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class PlatformSettings(BaseSettings):
    """Connections and logging, common to intake, review, notify and the worker."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="KAFKA_BOOTSTRAP_SERVERS, comma separated host:port"
    )
    kafka_topic_replication_factor: int = Field(
        default=1, ge=1, description="KAFKA_TOPIC_REPLICATION_FACTOR for topics the platform creates (3 on a cluster)"
    )
    temporal_address: str = Field(default="127.0.0.1:7233", description="TEMPORAL_ADDRESS host:port")
    temporal_namespace: str = Field(default="default", description="TEMPORAL_NAMESPACE")
    # Mutual TLS to the Temporal frontend (production): PEM file paths; unset = plain (loopback).
    temporal_tls_cert: str | None = Field(default=None, description="TEMPORAL_TLS_CERT: client certificate (PEM file)")
    temporal_tls_key: str | None = Field(default=None, description="TEMPORAL_TLS_KEY: its private key (PEM file)")
    temporal_tls_ca: str | None = Field(default=None, description="TEMPORAL_TLS_CA: CA of the server's certificate (PEM file)")
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/subsidy", description="DATABASE_URL"
    )
    database_pool_min: int = Field(default=1, ge=0, description="DATABASE_POOL_MIN")
    database_pool_max: int = Field(default=10, ge=1, description="DATABASE_POOL_MAX")
    log_level: str = Field(default="INFO", description="LOG_LEVEL")
    log_format: Literal["auto", "console", "json"] = Field(
        default="auto", description="LOG_FORMAT: auto = console on a terminal, JSON otherwise"
    )
    http_host: str = Field(default="127.0.0.1", description="HTTP_HOST the health/API endpoint binds")
    http_port: int = Field(default=8000, ge=0, le=65535, description="HTTP_PORT of the health/API endpoint")
    # Identity: bearer tokens of this OIDC issuer (subsidy/identity/). The embedded stack's local
    # issuer fills these; production names its Keycloak / MaxKey / provincial adapter.
    oidc_issuer: str = Field(default="http://127.0.0.1:8400", description="OIDC_ISSUER: the `iss` tokens must carry")
    oidc_audience: str = Field(default="subsidy-platform", description="OIDC_AUDIENCE: the `aud` tokens must carry")
    oidc_jwks_url: str = Field(
        default="http://127.0.0.1:8400/jwks.json", description="OIDC_JWKS_URL: the issuer's signing keys (JWKS)"
    )
    oidc_leeway_seconds: float = Field(default=30.0, ge=0, le=300, description="OIDC_LEEWAY_SECONDS: clock skew allowed")
    # Temporal payload encryption (subsidy/payload_codec.py): every process that talks to Temporal
    # holds the same keys; none set: payloads in clear.
    temporal_payload_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="TEMPORAL_PAYLOAD_KEYS: JSON object key id -> base64 AES-256 key; payloads encrypted when set",
    )
    temporal_payload_active_key_id: str | None = Field(
        default=None, description="TEMPORAL_PAYLOAD_ACTIVE_KEY_ID: the key new payloads are sealed with"
    )

    @field_validator("temporal_payload_keys", mode="before")
    @classmethod
    def _payload_keys_json(cls, value: Any) -> Any:
        return json_object_of_strings(value, "TEMPORAL_PAYLOAD_KEYS")


def json_object_of_strings(value: Any, env_name: str) -> Any:
    """Decode a JSON-object setting ourselves, so errors name the variable and never show its
    value; an empty variable is an empty object."""
    if not isinstance(value, str | bytes):
        return value
    if not value.strip():
        return {}
    try:
        decoded = json.loads(value)
    except ValueError:
        raise ValueError(f"{env_name} is not JSON") from None
    if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
        raise ValueError(f"{env_name} must be a JSON object of strings")
    return decoded
