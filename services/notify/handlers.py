"""Kafka entrypoints of the notify service. Each topic has its own subscriber, consumer and group
(`notify.<topic role>`), so a notice waiting for its contact never holds up the contacts topic it
waits for, and the subscribers do not rebalance one another."""

from __future__ import annotations

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.notify.service import Notifier
from subsidy.contracts import topics
from subsidy.contracts.events import parse_event
from subsidy.contracts.lifecycle import ReminderDue
from subsidy.contracts.platform_events import ContactRecorded, parse_model, parse_state_changed
from subsidy.messaging import parse_or_dlq, process_reliably, raw_body, subscriber_options
from subsidy.runtime import Resources

router = KafkaRouter()


@router.subscriber(topics.APPLICATION_STATE_CHANGED, decoder=raw_body, **subscriber_options("notify.state-changes"))
async def on_state_changed(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    event = await parse_or_dlq(resources.dead_letters, message, body, parse_state_changed)
    if event is not None:
        await process_reliably(lambda: notifier.on_state_changed(event), dead_letters=resources.dead_letters, message=message, body=body)


@router.subscriber(topics.DEADLINE_REMINDER_DUE, decoder=raw_body, **subscriber_options("notify.reminders"))
async def on_reminder_due(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    reminder = await parse_or_dlq(resources.dead_letters, message, body, lambda raw: parse_model(ReminderDue, raw))
    if reminder is not None:
        await process_reliably(lambda: notifier.on_reminder(reminder), dead_letters=resources.dead_letters, message=message, body=body)  # type: ignore[arg-type]


@router.subscriber(topics.CONTACT_RECORDED, decoder=raw_body, **subscriber_options("notify.contacts"))
async def on_contact_recorded(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    contact = await parse_or_dlq(resources.dead_letters, message, body, lambda raw: parse_model(ContactRecorded, raw))
    if contact is not None:
        await process_reliably(lambda: notifier.record_contact(contact), dead_letters=resources.dead_letters, message=message, body=body)  # type: ignore[arg-type]


@router.subscriber(topics.SMS_RECEIPTS, decoder=raw_body, **subscriber_options("notify.receipts"))
async def on_delivery_reported(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    receipt = await parse_or_dlq(resources.dead_letters, message, body, lambda raw: parse_event(topics.SMS_RECEIPTS, raw))
    if receipt is not None:
        await process_reliably(lambda: notifier.on_receipt(receipt), dead_letters=resources.dead_letters, message=message, body=body)
