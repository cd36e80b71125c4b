"""Sending through an ordered list of providers, and asking them what they already have.

`send_with_failover` tries the providers in order (primary first) and moves on when a provider
answered that it could not take the message for reasons of its own: throttling, an API error,
its account or templates (`SendResult.retryable`), or a connection it refused. A definitive
rejection of the message itself (an invalid or blacklisted number, content the carriers refuse)
is returned at once: it would fail everywhere. An outcome that is unknown (no answer: a timeout,
a connection dropped after the request went out, an exception from the adapter;
`SendResult.outcome_unknown`) is also returned at once: the provider may have accepted the
message, so sending it through the next one could deliver it twice. The caller asks that provider
(`reconcile`) before the message goes anywhere again.

`reconcile` asks every provider whether it already has our message (Alibaba `OutId`, Tencent
`SessionContext`, the local record) so that a retry after a crash does not send it twice. A
provider that cannot answer, or answers "not yet known" (`SentRecord.extra["conclusive"] ==
"false"`), makes the whole answer inconclusive: `ReconcileInconclusive` is raised and the caller
retries later instead of sending again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from services.notify.providers.port import SendResult, SentRecord, SmsProvider, SmsRequest
from subsidy.identifiers import mask_mobile
from subsidy.logging import get_logger

__all__ = [
    "ReconcileInconclusive",
    "SmsProviderUnavailable",
    "reconcile",
    "send_with_failover",
]

log = get_logger(__name__)


class SmsProviderUnavailable(Exception):
    """A provider could not answer a query (`find`): throttled, 5xx, timeout, unreachable.

    The message is the provider name and an error code, never a mobile number or a secret.
    """

    def __init__(self, provider: str, error_code: str) -> None:
        super().__init__(f"{provider}: {error_code}")
        self.provider = provider
        self.error_code = error_code


class ReconcileInconclusive(Exception):
    """No provider reported the message, and at least one could not tell: do not send yet."""

    def __init__(self, message_id: str, reasons: Mapping[str, str]) -> None:
        detail = ", ".join(f"{name}: {why}" for name, why in reasons.items())
        super().__init__(f"message {message_id}: provider records inconclusive ({detail})")
        self.message_id = message_id
        self.reasons = dict(reasons)


async def send_with_failover(
    providers: Sequence[SmsProvider],
    request: SmsRequest | Callable[[str], SmsRequest],
    *,
    template_codes: Mapping[str, str] | None = None,
    before_send: Callable[[str, SendResult | None], Awaitable[None]] | None = None,
) -> SendResult:
    """Send `request` through the first provider that accepts it.

    Returns the accepting provider's result, the first definitive rejection, or (every provider
    having failed for its own reasons) the last provider's result, `retryable=True`.
    `request` is one request for all, or a function of the provider's name giving that provider's
    request (each has its own template code and parameter order: notify's sender).
    `template_codes` maps provider name -> that provider's template code for this notice, when
    they differ (Alibaba `SMS_…` codes, Tencent numeric ids); without an entry the request's own
    `template_code` is used.
    `before_send(provider_name, previous_result)` is awaited before each provider is called (the
    previous provider's answer, None for the first): notify's sender checks there that it still
    holds its lease on the message and records which provider it is about to call; whatever it
    raises propagates, and that provider is not called.
    """
    if not providers:
        raise ValueError("no SMS provider configured")
    result: SendResult | None = None
    for index, provider in enumerate(providers):
        attempt = request(provider.name) if callable(request) else request
        if template_codes and provider.name in template_codes:
            attempt = dataclasses.replace(attempt, template_code=template_codes[provider.name])
        if before_send is not None:
            await before_send(provider.name, result)
        try:
            result = await provider.send(attempt)
        except Exception as exc:  # an adapter bug or an error it did not map: the request may have gone out
            log.warning(
                "sms.send.provider_error",
                provider=provider.name,
                message_id=attempt.message_id,
                template_code=attempt.template_code,
                mobile=mask_mobile(attempt.mobile),
                error=type(exc).__name__,
            )
            result = SendResult(
                provider=provider.name, accepted=False, error_code=f"exception:{type(exc).__name__}", retryable=True,
                outcome_unknown=True,
            )
        if result.accepted or not result.retryable:
            return result
        if result.outcome_unknown:
            log.warning(
                "sms.send.outcome_unknown",
                provider=provider.name,
                message_id=attempt.message_id,
                error_code=result.error_code,
                note="no failover: the provider may have the message; it is asked before any resend",
            )
            return result
        if index + 1 < len(providers):
            log.warning(
                "sms.send.failover",
                provider=provider.name,
                next_provider=providers[index + 1].name,
                message_id=attempt.message_id,
                error_code=result.error_code,
            )
    assert result is not None
    log.error(
        "sms.send.all_providers_failed",
        providers=[p.name for p in providers],
        message_id=attempt.message_id,
        error_code=result.error_code,
    )
    return result


async def reconcile(
    providers: Sequence[SmsProvider], message_id: str, mobile: str, sent_at: datetime
) -> tuple[str, SentRecord] | None:
    """(provider name, its record) of the provider that has our message, or None if none has it.

    `sent_at` is when the send was recorded (before the provider was called), timezone-aware.
    Raises `ReconcileInconclusive` when no provider reports the message and at least one could
    not answer or could not yet know; sending again then could deliver it twice.
    """
    unsure: dict[str, str] = {}
    for provider in providers:
        try:
            record = await provider.find(message_id, mobile=mobile, sent_at=sent_at)
        except SmsProviderUnavailable as exc:
            unsure[provider.name] = exc.error_code
            continue
        except Exception as exc:
            unsure[provider.name] = f"exception:{type(exc).__name__}"
            continue
        if record.found:
            log.info(
                "sms.reconcile.found",
                provider=provider.name,
                message_id=message_id,
                status=record.status,
            )
            return provider.name, record
        if record.extra.get("conclusive") == "false":
            unsure[provider.name] = record.extra.get("reason", "not yet known")
    if unsure:
        log.warning("sms.reconcile.inconclusive", message_id=message_id, providers=sorted(unsure))
        raise ReconcileInconclusive(message_id, unsure)
    log.info("sms.reconcile.not_found", message_id=message_id, providers=[p.name for p in providers])
    return None
