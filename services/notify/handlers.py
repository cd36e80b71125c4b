"""Kafka entrypoints of the notify service. Each topic has its own subscriber, consumer and group
(`notify.<topic role>`), so a notice waiting for its contact never holds up the contacts topic it
waits for, and the subscribers do not rebalance one another."""

from __future__ import annotations

from faststream.kafka import KafkaRouter

from services.notify.service import Notifier
from subsidy.contracts import topics
from subsidy.contracts.events import parse_event
from subsidy.contracts.lifecycle import ReminderDue
from subsidy.contracts.platform_events import ContactRecorded, parse_model, parse_state_changed
from subsidy.messaging import ConsumedMessage, consume, from_context, raw_body, subscriber_options
from subsidy.runtime import Resources

router = KafkaRouter()


@router.subscriber(topics.APPLICATION_STATE_CHANGED, decoder=raw_body, **subscriber_options("notify.state-changes"))
async def on_state_changed(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume(resources.dead_letters, message.raw_message, body, parse_state_changed, notifier.on_state_changed)


@router.subscriber(topics.DEADLINE_REMINDER_DUE, decoder=raw_body, **subscriber_options("notify.reminders"))
async def on_reminder_due(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume(resources.dead_letters, message.raw_message, body, lambda raw: parse_model(ReminderDue, raw), notifier.on_reminder)


@router.subscriber(topics.CONTACT_RECORDED, decoder=raw_body, **subscriber_options("notify.contacts"))
async def on_contact_recorded(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume(resources.dead_letters, message.raw_message, body, lambda raw: parse_model(ContactRecorded, raw), notifier.record_contact)


@router.subscriber(topics.SMS_RECEIPTS, decoder=raw_body, **subscriber_options("notify.receipts"))
async def on_delivery_reported(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume(resources.dead_letters, message.raw_message, body, lambda raw: parse_event(topics.SMS_RECEIPTS, raw), notifier.on_receipt)
