"""Settings of the intake service (environment variables; see subsidy/settings.py for the shared ones).

Secrets are `SecretStr` (rendered as '**********' by repr and in validation errors, which also
never show inputs). The personal-data keys are shared with notify (subsidy/crypto.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from subsidy.crypto import PersonalDataSettings
from subsidy.settings import json_object_of_strings

_MIN_WEBHOOK_SECRET = 16


class IntakeSettings(PersonalDataSettings):
    """The shared connections and logging, the personal-data keys and the webhook keys."""

    webhook_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description=(
            "WEBHOOK_KEYS: JSON object source slug -> HMAC secret (services/intake/webhook.py); "
            "a source without a key has no webhook"
        ),
    )
    webhook_max_skew_seconds: int = Field(
        default=300, ge=1, description="WEBHOOK_MAX_SKEW_SECONDS: accepted X-Timestamp distance from now"
    )
    webhook_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="WEBHOOK_MAX_BODY_BYTES: larger requests get 413"
    )
    webhook_publish_timeout_seconds: float = Field(
        default=10.0, gt=0,
        description="WEBHOOK_PUBLISH_TIMEOUT_SECONDS: how long the webhook waits for Kafka to take an event before "
        "it answers 503 with Retry-After (the sender retries; the event id makes a repeat harmless)",
    )

    # Intake takes a connection only for an event's read and its write (none during the workflow
    # command), so the pool can be smaller than the lanes of all topics together.
    database_pool_max: int = Field(default=20, ge=1, description="DATABASE_POOL_MAX")
    lanes_per_topic: int = Field(
        default=16, ge=1, le=256,
        description="LANES_PER_TOPIC: applications in progress at once per inbound topic (services/intake/handlers.py)",
    )

    @field_validator("webhook_keys", mode="before")
    @classmethod
    def _json_object(cls, value: Any, info: Any) -> Any:
        return json_object_of_strings(value, info.field_name.upper())

    @field_validator("webhook_keys")
    @classmethod
    def _webhook_secrets_are_long_enough(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        short = sorted(slug for slug, secret in value.items() if len(secret.get_secret_value()) < _MIN_WEBHOOK_SECRET)
        if short:
            raise ValueError(f"WEBHOOK_KEYS: secrets shorter than {_MIN_WEBHOOK_SECRET} characters for {short}")
        return value

