"""The one port every SMS provider adapter implements (Alibaba Cloud, Tencent Cloud, local).

Our own message id travels with each send (Alibaba's `OutId`, Tencent's `SessionContext`) so that,
after a crash between the provider's accept and our commit, `find` can ask the provider whether it
already has the message before anything is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog

from subsidy.identifiers import mask_mobile


@dataclass(frozen=True)
class SmsRequest:
    message_id: str  # ours (uuid); the provider keeps it as OutId / SessionContext
    mobile: str  # 11 digits, mainland China
    sign_name: str  # 签名, e.g. 龙岗区人工智能署
    template_code: str  # the provider's template code / id for this notice
    params: dict[str, str]  # template variables, in the provider template's order for Tencent
    text: str  # the rendered Chinese text (what the local provider records and the SMS log shows)


@dataclass(frozen=True)
class SendResult:
    provider: str
    accepted: bool
    provider_message_id: str | None = None  # Alibaba BizId / Tencent SerialNo
    error_code: str | None = None
    retryable: bool = False  # a provider error worth failing over / retrying (throttling, 5xx, timeouts)
    # No answer arrived (a timeout, the connection dropped after the request went out, an adapter
    # error): the provider may have accepted the message. It must be asked (`find`) before the
    # message goes to any provider again: no failover, no blind resend.
    outcome_unknown: bool = False


@dataclass(frozen=True)
class SentRecord:
    """What the provider knows of one of our messages."""

    found: bool
    provider_message_id: str | None = None
    status: Literal["SENDING", "DELIVERED", "FAILED"] | None = None
    reported_at: datetime | None = None
    error_code: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class SmsProvider(Protocol):
    name: str  # "aliyun" | "tencent" | "local"

    async def send(self, request: SmsRequest) -> SendResult: ...

    async def find(self, message_id: str, *, mobile: str, sent_at: datetime) -> SentRecord:
        """The provider's own record of our message (by OutId / SessionContext), if any."""
        ...


def log_send(provider: str, request: SmsRequest, result: SendResult, log: Any = None) -> None:
    """One line per send attempt: provider, our id, template, masked number, outcome."""
    log = log or structlog.get_logger(f"services.notify.providers.{provider}")
    fields: dict[str, Any] = {
        "provider": provider,
        "message_id": request.message_id,
        "template_code": request.template_code,
        "mobile": mask_mobile(request.mobile),
        "outcome": "accepted" if result.accepted else ("unknown" if result.outcome_unknown else "rejected"),
    }
    if result.accepted:
        log.info("sms.send", provider_message_id=result.provider_message_id, **fields)
    else:
        log.warning(
            "sms.send", error_code=result.error_code, retryable=result.retryable, outcome_unknown=result.outcome_unknown, **fields
        )
