"""Settings of the intake service (environment variables; see subsidy/settings.py for the shared ones).

Secrets are `SecretStr` (rendered as '**********' by repr and in validation errors, which also
never show inputs). The personal-data keys have no default: the service does not start without
them (the embedded stack generates a development set; deployments take them from a Secret).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from subsidy.crypto import PersonalDataError, cipher_from_settings
from subsidy.settings import PlatformSettings

_MIN_WEBHOOK_SECRET = 16


class IntakeSettings(PlatformSettings):
    """The shared connections and logging, the personal-data keys and the webhook keys."""

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

    @field_validator("personal_data_keys", "webhook_keys", mode="before")
    @classmethod
    def _json_object(cls, value: Any, info: Any) -> Any:
        """Decode the JSON here (not in the settings source) so errors stay ours and value-free;
        an empty variable is an empty object."""
        if not isinstance(value, str | bytes):
            return value
        if not value.strip():
            return {}
        env_name = info.field_name.upper()
        try:
            decoded = json.loads(value)
        except ValueError:
            raise ValueError(f"{env_name} is not JSON") from None
        if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
            raise ValueError(f"{env_name} must be a JSON object of strings")
        return decoded

    @field_validator("webhook_keys")
    @classmethod
    def _webhook_secrets_are_long_enough(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        short = sorted(slug for slug, secret in value.items() if len(secret.get_secret_value()) < _MIN_WEBHOOK_SECRET)
        if short:
            raise ValueError(f"WEBHOOK_KEYS: secrets shorter than {_MIN_WEBHOOK_SECRET} characters for {short}")
        return value

    @model_validator(mode="after")
    def _personal_data_keys_are_usable(self) -> IntakeSettings:
        try:
            cipher_from_settings(self)
        except PersonalDataError as exc:
            raise ValueError(str(exc)) from None
        return self
