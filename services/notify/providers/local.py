"""The local SMS provider of the embedded stack: no account, no real SMS.

Each message is handed to `record` (the notify service stores it; it is what the SMS log shows),
and `delay_s` later a delivery receipt for it is put on `sms.receipts.v1`, exactly as a real
provider's receipt arrives (`cn.sms.delivery.reported`, source `urn:sms:local`, status DELIVERED,
the real mobile number as the contract has it, Kafka key = our message id). The lifecycle then runs
end to end.

`find` answers from what `lookup` finds recorded. A message recorded by an earlier process whose
receipt this process has not published (a crash in between) gets its receipt published now, as a
carrier's late report would be; receipts are idempotent per message id on the consuming side.
Never configure it next to a real provider: it reports every message delivered.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.notify.providers.port import SendResult, SentRecord, SmsRequest
from subsidy.contracts import topics
from subsidy.identifiers import mask_mobile, normalise_mobile
from subsidy.logging import get_logger

__all__ = ["LocalSmsProvider", "delivery_receipt"]

log = get_logger(__name__)
CHINA = ZoneInfo("Asia/Shanghai")
NAME = "local"
SOURCE = "urn:sms:local"

Record = Callable[[SmsRequest], Awaitable[Any]]
Publish = Callable[[str, str, bytes], Awaitable[Any]]
Lookup = Callable[[str], Awaitable[datetime | None]]

_PUBLISH_ATTEMPTS = 5
_PUBLISH_BACKOFF_S = 0.5
_REMEMBERED = 100_000  # message ids whose receipt this process published (oldest forgotten first)


def delivery_receipt(
    message_id: str,
    mobile: str,
    *,
    provider: str = NAME,
    status: str = "DELIVERED",
    error_code: str | None = None,
    reported_at: datetime | None = None,
) -> dict[str, Any]:
    """A `cn.sms.delivery.reported` CloudEvent (CONTRACTS.md) for one of our messages.

    The subject is the message id: the provider knows no application number (the message id must
    fit the subject's alphabet, `[A-Za-z0-9][A-Za-z0-9_-]{0,63}`; a uuid does).
    """
    at = (reported_at or datetime.now(CHINA)).isoformat()
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"urn:sms:{provider}",
        "type": topics.SMS_DELIVERY_REPORTED,
        "time": at,
        "subject": message_id,
        "datacontenttype": "application/json",
        "data": {
            "message_id": message_id,
            "provider": provider,
            "mobile": normalise_mobile(mobile) or mobile,
            "status": status,
            "error_code": error_code,
            "reported_at": at,
        },
    }


class LocalSmsProvider:
    """The `SmsProvider` of the embedded stack.

    record(request): stores the message (raises if it cannot: the send then fails).
    publish(topic, key, body): puts `body` (UTF-8 JSON bytes) on Kafka topic `topic` with key `key`.
    lookup(message_id): when the message was recorded (aware datetime), or None if it was not.
    """

    name = NAME

    def __init__(
        self,
        record: Record,
        publish: Publish,
        lookup: Lookup | None = None,
        *,
        delay_s: float = 0.5,
    ) -> None:
        self._record = record
        self._publish = publish
        self._lookup = lookup
        self.delay_s = delay_s
        self._published: dict[str, None] = {}  # insertion-ordered set
        self._pending: dict[str, asyncio.Task[None]] = {}

    async def send(self, request: SmsRequest) -> SendResult:
        await self._record(request)
        self._schedule_receipt(request.message_id, request.mobile)
        log.info(
            "sms.send",
            provider=NAME,
            message_id=request.message_id,
            template_code=request.template_code,
            mobile=mask_mobile(request.mobile),
            outcome="accepted",
        )
        return SendResult(provider=NAME, accepted=True, provider_message_id=request.message_id)

    async def find(self, message_id: str, *, mobile: str, sent_at: datetime) -> SentRecord:
        if message_id in self._published:
            return SentRecord(found=True, provider_message_id=message_id, status="DELIVERED")
        if message_id in self._pending:
            return SentRecord(found=True, provider_message_id=message_id, status="SENDING")
        recorded_at = await self._lookup(message_id) if self._lookup is not None else None
        if not recorded_at:
            log.info("sms.find", provider=NAME, message_id=message_id, outcome="not_found")
            return SentRecord(found=False)
        # Recorded by an earlier process that may have stopped before publishing the receipt.
        self._schedule_receipt(message_id, mobile)
        log.info("sms.find", provider=NAME, message_id=message_id, outcome="SENDING")
        return SentRecord(
            found=True,
            provider_message_id=message_id,
            status="SENDING",
            extra={"recorded_at": recorded_at.isoformat()} if isinstance(recorded_at, datetime) else {},
        )

    def resume_receipt(self, message_id: str, mobile: str) -> None:
        """Report again a message notify recorded as accepted here and not yet delivered: a process
        stopped (killed, or `aclose`) between the accept and the receipt loses the receipt it had
        scheduled, and the lifecycle would wait out the whole receipt wait. Notify's sender asks
        this at start for each such message; a receipt reported twice is absorbed by notify."""
        self._schedule_receipt(message_id, mobile)

    async def drain(self) -> None:
        """Wait until every scheduled receipt has been published (or given up on)."""
        while self._pending:
            await asyncio.gather(*list(self._pending.values()), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the receipts not yet published (at shutdown)."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()

    def _schedule_receipt(self, message_id: str, mobile: str) -> None:
        if message_id in self._pending:
            return
        task = asyncio.get_running_loop().create_task(
            self._report(message_id, mobile), name=f"sms-local-receipt-{message_id}"
        )
        self._pending[message_id] = task
        task.add_done_callback(lambda _t: self._pending.pop(message_id, None))

    async def _report(self, message_id: str, mobile: str) -> None:
        await asyncio.sleep(self.delay_s)
        event = delivery_receipt(message_id, mobile)
        body = json.dumps(event, ensure_ascii=False).encode()
        for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
            try:
                await self._publish(topics.SMS_RECEIPTS, message_id, body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "sms.local.receipt_publish_failed",
                    provider=NAME,
                    message_id=message_id,
                    attempt=attempt,
                    error=type(exc).__name__,
                )
                await asyncio.sleep(_PUBLISH_BACKOFF_S * 2 ** (attempt - 1))
                continue
            self._published[message_id] = None
            while len(self._published) > _REMEMBERED:
                del self._published[next(iter(self._published))]
            log.info(
                "sms.local.receipt_published",
                provider=NAME,
                message_id=message_id,
                event_id=event["id"],
                status="DELIVERED",
            )
            return
        log.error("sms.local.receipt_lost", provider=NAME, message_id=message_id)
