"""Use cases of the notify service: which notice an event calls for, queued exactly once; delivery
receipts; and the lifecycle told when the approval SMS is delivered (the paper clock starts).

Sending is the SmsSender's (services/notify/sender.py): consuming an event only queues a row keyed
by (application, notice kind, deadline or version), so a redelivered event queues nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from services.notify import repository
from services.notify.notices import (
    ApplicationFacts,
    Notice,
    NoticeError,
    QuietHours,
    Templates,
    notice_for_reminder,
    notice_for_state_change,
    notice_kind_for_state_change,
)
from subsidy.contracts import topics
from subsidy.contracts.events import ParsedEvent
from subsidy.contracts.lifecycle import (
    SIGNAL_SMS_DELIVERY_REPORTED,
    STATE_CHANGE_REVISION,
    NoticeKind,
    ReminderDue,
    SmsDeliveryReported,
)
from subsidy.contracts.platform_events import ApplicationStateChanged, ContactRecorded, PhoneTaskCreated
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.crypto import PersonalDataCipher
from subsidy.identifiers import mask_mobile
from subsidy.messaging import record_in_inbox
from subsidy.outbox import write_event

PAPER_CLOCK_NOTICE = NoticeKind.BACK_OFFICE_APPROVED  # its delivery starts the 5-working-day paper clock
PROVIDERS = ("aliyun", "tencent", "local")
log = structlog.get_logger(__name__)


class ContactNotYetKnown(Exception):
    """The notice's contact has not arrived (it comes from intake on another topic, normally long
    before). Retried a few times with backoff; if it still has not come, the event goes to the DLQ
    (reason `processing_failed`, detail `ContactNotYetKnown`) for an operator, and the partition
    moves on instead of waiting forever."""


def _carries_facts(event: ApplicationStateChanged) -> bool:
    """Whether a state change carries an award or a tier for later notices (legacy events may, in
    their reason: `ApplicationFacts.after`)."""
    return event.contract_revision < STATE_CHANGE_REVISION or event.award_fen is not None or event.tier is not None


@dataclass
class Notifier:
    pool: asyncpg.Pool
    cipher: PersonalDataCipher
    templates: Templates
    quiet_hours: QuietHours
    temporal: Client
    provider_names: tuple[str, ...]
    retry_after_failed_delivery: timedelta = timedelta(seconds=30)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # --- contacts ------------------------------------------------------------------------------

    async def record_contact(self, event: ContactRecorded) -> None:
        mobile = self.cipher.decrypt(event.contact_mobile_sealed, context=f"{event.application_no}:applicant.contact.mobile")
        async with self.pool.acquire() as conn, conn.transaction():
            if not await record_in_inbox(conn, consumer="notify.contacts", event_id=event.event_id, topic=topics.CONTACT_RECORDED):
                return
            await repository.upsert_contact(
                conn, application_no=event.application_no, program=event.program, version=event.version,
                applicant_name=event.applicant_name, mobile_sealed=event.contact_mobile_sealed,
                mobile_hash=self.cipher.lookup_hash("mobile", mobile), mobile_masked=mask_mobile(mobile),
            )

    # --- notices ------------------------------------------------------------------------------

    async def on_state_changed(self, event: ApplicationStateChanged) -> uuid.UUID | None:
        needs_notice = notice_kind_for_state_change(event, self.templates) is not None
        if not needs_notice and not _carries_facts(event):
            return None  # most state changes: nothing to queue or remember, so no transaction at all
        return await self._queue(
            event.event_id, topics.APPLICATION_STATE_CHANGED, event.application_no, event.correlation_id,
            lambda facts: notice_for_state_change(event, facts, self.templates), change=event,
            needs_notice=needs_notice,
        )

    async def on_reminder(self, reminder: ReminderDue) -> uuid.UUID | None:
        return await self._queue(
            reminder.event_id, topics.DEADLINE_REMINDER_DUE, reminder.application_no, reminder.correlation_id,
            lambda facts: notice_for_reminder(reminder, facts, self.templates), needs_notice=True,
        )

    async def _queue(
        self, event_id: str, topic: str, application_no: str, correlation_id: str | None, pick: Any, *,
        needs_notice: bool, change: ApplicationStateChanged | None = None,
    ) -> uuid.UUID | None:
        async with self.pool.acquire() as conn, conn.transaction():
            if not await record_in_inbox(conn, consumer="notify.notices", event_id=event_id, topic=topic):
                return None
            contact = await repository.contact(conn, application_no)
            if contact is None and needs_notice:
                raise ContactNotYetKnown(application_no)  # rolls back the inbox row: the event comes again
            known = ApplicationFacts(
                applicant_name=contact["applicant_name"] if contact else "",
                award_fen=contact["award_fen"] if contact else None,
                tier=contact["tier"] if contact else None,
            )
            facts = known.after(change) if change is not None else known  # the award and tier the change carries
            if facts is not known:
                if contact is None:
                    raise ContactNotYetKnown(application_no)
                await repository.remember_award(conn, application_no, award_fen=facts.award_fen, tier=facts.tier)
            notice: Notice | None = pick(facts)
            if notice is None or contact is None:
                return None
            not_before = self.quiet_hours.defer(notice, self.clock())
            if notice.is_expired(not_before):
                log.info("notice not queued: it would only go out after its deadline", application_no=application_no, kind=notice.kind)
                return None
            message_id = await repository.queue_message(
                conn,
                idempotency_key=notice.idempotency_key,
                application_no=application_no,
                program=notice.program,
                kind=notice.kind,
                text=notice.text,
                sign_name=notice.sign_name,
                # What each provider needs (its template and variables), fixed when the notice is queued.
                params={p: {"template": notice.template_code_for(p), "params": notice.params_for(p)} for p in PROVIDERS},
                mobile_hash=contact["mobile_hash"],
                mobile_masked=contact["mobile_masked"],
                not_before=not_before,
                source_event_id=event_id,
                correlation_id=correlation_id,
            )
        log.info("notice queued" if message_id else "notice already queued", application_no=application_no, kind=notice.kind)
        return message_id

    def send_time(self, message: asyncpg.Record | dict[str, Any], at: datetime) -> datetime:
        """When a queued message due again at `at` may go out: out of quiet hours unless its kind is
        exempt, as when it was queued (`QuietHours.defer`). The exemption is looked up in the
        program's template by the row's program and kind, not stored on the row: the templates are
        checked at start to hold every kind a lifecycle sends, so rows queued before this rule have
        one too. A row whose template is gone (its program no longer configured) waits for the
        morning, like every notice that is not exempt."""
        try:
            exempt = self.templates.program(message["program"]).notice(message["kind"]).quiet_hours_exempt
        except NoticeError:
            exempt = False
        return self.quiet_hours.send_time(at, exempt=exempt)

    # --- delivery receipts --------------------------------------------------------------------

    async def on_receipt(self, receipt: ParsedEvent) -> None:
        """DELIVERED: recorded, and for the approval notice the lifecycle is told (the paper clock
        starts at delivery). FAILED: sent again by the same provider once, then by the other one;
        after that a reviewer phones the enterprise. A resend keeps to quiet hours (`send_time`):
        a failure reported at 23:00 is sent again at 08:00 unless the kind is exempt. A receipt from
        a provider that never took the message is ignored; a delivery time before the sending (or in
        the future) counts from the sending (or now)."""
        data: Any = receipt.payload
        async with self.pool.acquire() as conn, conn.transaction():
            if not await record_in_inbox(
                conn, consumer="notify.receipts", event_id=receipt.envelope.id, topic=topics.SMS_RECEIPTS,
                source=receipt.envelope.source,
            ):
                return
            message = await repository.message_for_receipt(conn, data.message_id)
            if message is None:
                log.warning("receipt for an unknown message", provider=data.provider, status=data.status)
                return
            if receipt.envelope.source != f"urn:sms:{data.provider}" or data.provider not in message["tried_providers"]:
                # Only a provider that took the message reports on it, under its own source (the
                # webhook's key per source): another's receipt would start the paper clock.
                log.warning("receipt from a provider that never took this message; ignored", provider=data.provider,
                            source=receipt.envelope.source, message_provider=message["provider"], status=data.status)
                return
            if data.status == "DELIVERED":
                data = data.model_copy(update={"reported_at": self._within_sending(data.reported_at, message)})
                await repository.mark_delivered(conn, message["message_id"], data.reported_at)
                if message["kind"] == PAPER_CLOCK_NOTICE:
                    await self._tell_lifecycle(message, data)
            else:
                await self._delivery_failed(conn, message, data.error_code or "FAILED")
        log.info("receipt recorded", application_no=message["application_no"], kind=message["kind"], status=data.status)

    def _within_sending(self, reported_at: datetime, message: asyncpg.Record) -> datetime:
        """A delivery time no earlier than the (last) send and no later than now: a carrier's clock
        off, or a back-dated report, must not move the paper clock's start before the SMS left, or
        into the future."""
        sent_at = message["sent_at"]
        if sent_at is not None and reported_at < sent_at:
            log.warning("delivery reported before the SMS was sent; counted from its sending",
                        provider=message["provider"], early_by_s=round((sent_at - reported_at).total_seconds()))
            return sent_at
        return min(reported_at, self.clock())

    async def _tell_lifecycle(self, message: asyncpg.Record, data: Any) -> None:
        handle = self.temporal.get_workflow_handle(application_workflow_id(message["program"], message["application_no"]))
        report = SmsDeliveryReported(
            message_id=str(message["message_id"]), notice_kind=message["kind"], status="DELIVERED", reported_at=data.reported_at
        )
        try:
            await handle.signal(SIGNAL_SMS_DELIVERY_REPORTED, report)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise  # transient: the receipt is processed again
            log.warning("lifecycle already closed; delivery not signalled", application_no=message["application_no"])

    async def _delivery_failed(self, conn: asyncpg.Connection, message: asyncpg.Record, error: str) -> None:
        failures = await repository.count_delivery_failure(conn, message["message_id"], error)
        untried = [name for name in self.provider_names if name not in message["tried_providers"]]
        if failures == 1 and message["provider"]:
            next_provider: str | None = message["provider"]  # once more, the same way
        elif untried:
            next_provider = untried[0]  # then the other provider
        else:
            await self.phone_task(conn, message, f"undelivered: {error}")
            return
        await repository.retry_later(
            conn, message["message_id"], at=self.send_time(message, self.clock() + self.retry_after_failed_delivery),
            error=f"delivery failed: {error}", next_provider=next_provider,
        )

    async def phone_task(self, conn: asyncpg.Connection, message: asyncpg.Record, reason: str) -> None:
        """No provider reached the enterprise: a reviewer phones it (review's task inbox)."""
        if await repository.create_phone_task(conn, message["message_id"], message["application_no"], reason):
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"phone-task:{message['message_id']}"))
            await write_event(
                conn,
                topic=topics.PHONE_TASK_CREATED,
                key=message["application_no"],
                event_id=event_id,
                payload=PhoneTaskCreated(
                    event_id=event_id, program=message["program"], application_no=message["application_no"],
                    notice_kind=message["kind"], reason=reason, created_at=self.clock(),
                ),
            )
            log.warning("phone task created", application_no=message["application_no"], kind=message["kind"], reason=reason)
