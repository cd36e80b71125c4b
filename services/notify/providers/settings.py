"""Which SMS providers the notify service uses, and their accounts (environment variables).

`SMS_PROVIDERS` names the providers in order, primary first: `aliyun,tencent` (the default),
`tencent,aliyun`, one of them alone, or `local` (the embedded stack: no account, no real SMS;
see `local.py`). Nothing else is needed for `local`; a real provider without its credentials is
refused by `build_providers` with the names of the missing variables, never silently replaced.

Secrets are `SecretStr`: '**********' in repr, logs and validation errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notify.providers.port import SmsProvider

PROVIDER_NAMES = ("aliyun", "tencent", "local")


class SmsProviderSettings(BaseSettings):
    """SMS_PROVIDERS and the Alibaba Cloud / Tencent Cloud SMS accounts."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    sms_providers: str = Field(
        default="aliyun,tencent",
        description="SMS_PROVIDERS: comma separated, primary first (aliyun, tencent), or 'local' for the embedded stack",
    )
    sms_request_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="SMS_REQUEST_TIMEOUT_SECONDS: per provider HTTP call"
    )

    aliyun_sms_access_key_id: str = Field(default="", description="ALIYUN_SMS_ACCESS_KEY_ID")
    aliyun_sms_access_key_secret: SecretStr = Field(
        default=SecretStr(""), description="ALIYUN_SMS_ACCESS_KEY_SECRET"
    )
    aliyun_sms_endpoint: str = Field(
        default="dysmsapi.aliyuncs.com", description="ALIYUN_SMS_ENDPOINT host[:port]"
    )
    aliyun_sms_protocol: Literal["https", "http"] = Field(
        default="https", description="ALIYUN_SMS_PROTOCOL (http only for a local fake)"
    )

    tencent_sms_secret_id: str = Field(default="", description="TENCENT_SMS_SECRET_ID")
    tencent_sms_secret_key: SecretStr = Field(default=SecretStr(""), description="TENCENT_SMS_SECRET_KEY")
    tencent_sms_sdk_app_id: str = Field(default="", description="TENCENT_SMS_SDK_APP_ID, e.g. 1400006666")
    tencent_sms_region: str = Field(default="ap-guangzhou", description="TENCENT_SMS_REGION")
    tencent_sms_endpoint: str = Field(
        default="sms.tencentcloudapi.com", description="TENCENT_SMS_ENDPOINT host[:port]"
    )
    tencent_sms_scheme: Literal["https", "http"] = Field(
        default="https", description="TENCENT_SMS_SCHEME (http only for a local fake)"
    )

    @field_validator("sms_providers")
    @classmethod
    def _known_providers(cls, value: str) -> str:
        names = [n.strip().lower() for n in value.split(",") if n.strip()]
        if not names:
            raise ValueError("SMS_PROVIDERS names no provider")
        unknown = [n for n in names if n not in PROVIDER_NAMES]
        if unknown:
            raise ValueError(f"SMS_PROVIDERS: unknown providers {unknown}; known: {list(PROVIDER_NAMES)}")
        if len(set(names)) != len(names):
            raise ValueError("SMS_PROVIDERS names a provider twice")
        if "local" in names and len(names) > 1:
            # The local provider reports every message delivered: next to a real one it would
            # start legal deadlines for messages nobody received.
            raise ValueError("SMS_PROVIDERS: 'local' cannot be combined with real providers")
        return ",".join(names)

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The providers in order, primary first."""
        return tuple(self.sms_providers.split(","))

    def missing_for(self, name: str) -> list[str]:
        """The environment variables provider `name` needs and does not have."""
        required: dict[str, str | SecretStr] = {}
        if name == "aliyun":
            required = {
                "ALIYUN_SMS_ACCESS_KEY_ID": self.aliyun_sms_access_key_id,
                "ALIYUN_SMS_ACCESS_KEY_SECRET": self.aliyun_sms_access_key_secret,
            }
        elif name == "tencent":
            required = {
                "TENCENT_SMS_SECRET_ID": self.tencent_sms_secret_id,
                "TENCENT_SMS_SECRET_KEY": self.tencent_sms_secret_key,
                "TENCENT_SMS_SDK_APP_ID": self.tencent_sms_sdk_app_id,
            }
        return [
            env
            for env, value in required.items()
            if not (value.get_secret_value() if isinstance(value, SecretStr) else value).strip()
        ]


class SmsProviderConfigError(ValueError):
    """SMS_PROVIDERS names a provider that cannot be built (missing credentials, no local wiring)."""


def build_providers(settings: SmsProviderSettings, *, local: SmsProvider | None = None) -> list[SmsProvider]:
    """The providers of SMS_PROVIDERS, in order (primary first).

    `local` is the `LocalSmsProvider` the notify service wires with its database and broker; it
    is required when SMS_PROVIDERS=local and ignored otherwise.
    """
    providers: list[SmsProvider] = []
    missing: list[str] = []
    for name in settings.provider_names:
        missing.extend(settings.missing_for(name))
    if missing:
        raise SmsProviderConfigError(
            f"SMS_PROVIDERS={settings.sms_providers} needs {', '.join(missing)} (or SMS_PROVIDERS=local)"
        )
    for name in settings.provider_names:
        # Imported here: the SDKs are loaded only by processes that use real providers.
        if name == "aliyun":
            from services.notify.providers.aliyun import AliyunSmsProvider

            providers.append(AliyunSmsProvider.from_settings(settings))
        elif name == "tencent":
            from services.notify.providers.tencent import TencentSmsProvider

            providers.append(TencentSmsProvider.from_settings(settings))
        else:
            if local is None:
                raise SmsProviderConfigError(
                    "SMS_PROVIDERS=local needs the LocalSmsProvider wired by the notify service (local=...)"
                )
            providers.append(local)
    return providers
