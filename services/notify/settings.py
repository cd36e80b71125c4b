"""Settings of the notify service (environment variables; shared ones in subsidy/settings.py and
subsidy/crypto.py, the providers' in services/notify/providers/settings.py)."""

from __future__ import annotations

from datetime import time

from pydantic import Field

from services.notify.providers.settings import SmsProviderSettings
from subsidy.crypto import PersonalDataSettings


class NotifySettings(PersonalDataSettings, SmsProviderSettings):
    """Connections, the personal-data keys (to open the contact number), the SMS providers
    (services/notify/providers/settings.py), limits and timing."""

    sms_same_content_interval_seconds: int = Field(
        default=30, ge=0, description="SMS_SAME_CONTENT_INTERVAL_SECONDS: the same text to one number at most this often"
    )
    sms_daily_limit: int = Field(default=10, ge=1, description="SMS_DAILY_LIMIT: messages to one number per day (Asia/Shanghai)")
    sms_quiet_start: time = Field(
        default=time(21, 0), description="SMS_QUIET_START: no SMS of a kind not exempt (the templates say) from this time ..."
    )
    sms_quiet_end: time = Field(
        default=time(8, 0), description="SMS_QUIET_END: ... until this time (Asia/Shanghai), first sends and resends alike"
    )
    sms_max_send_attempts: int = Field(
        default=5, ge=1, description="SMS_MAX_SEND_ATTEMPTS: provider errors before the message becomes a phone task"
    )
    sms_sender_poll_seconds: float = Field(default=0.5, gt=0, description="SMS_SENDER_POLL_SECONDS: how often due messages are looked for")
    sms_send_lease_seconds: float = Field(
        default=60, gt=0, description=(
            "SMS_SEND_LEASE_SECONDS: after this, a message a sender died on is reconciled by another; renewed before each "
            "provider call, so keep it above SMS_REQUEST_TIMEOUT_SECONDS (a call must not outlive its lease)"
        ),
    )
    sms_retry_after_failed_delivery_seconds: float = Field(
        default=30, ge=0, description=(
            "SMS_RETRY_AFTER_FAILED_DELIVERY_SECONDS: wait before resending an undelivered SMS (then, unless its kind is "
            "exempt, until the quiet hours end)"
        ),
    )
