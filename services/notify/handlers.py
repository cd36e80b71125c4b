"""Kafka entrypoints of the notify service. Each topic has its own subscriber, consumer and group
(`notify.<topic role>`), so a notice waiting for its contact never holds up the contacts topic it
waits for, and the subscribers do not rebalance one another. The busy ones (state changes, contacts,
receipts) take fetched batches and handle them `in_key_order` (subsidy.messaging's
`keyed_batch_options`): one application's events in order, different applications concurrently, so
a burst does not queue behind one handler and a notice waiting for its contact holds up only its own
application's lane (and its batch's commit)."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaRouter

from services.notify.service import Notifier
from subsidy.contracts import topics
from subsidy.contracts.events import parse_event
from subsidy.contracts.lifecycle import ReminderDue
from subsidy.contracts.platform_events import ContactRecorded, parse_model, parse_state_changed
from subsidy.messaging import (
    ConsumedMessage, consume, consume_in_key_order, from_context, keyed_batch_options, raw_body, subscriber_options,
)
from subsidy.runtime import Resources

router = KafkaRouter()


@router.subscriber(topics.APPLICATION_STATE_CHANGED, **keyed_batch_options("notify.state-changes"))
async def on_state_changed(_bodies: Any, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume_in_key_order(resources.dead_letters, message.raw_message, parse_state_changed,  # type: ignore[arg-type]
                               notifier.on_state_changed)


@router.subscriber(topics.DEADLINE_REMINDER_DUE, decoder=raw_body, **subscriber_options("notify.reminders"))
async def on_reminder_due(body: bytes, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume(resources.dead_letters, message.raw_message, body, lambda raw: parse_model(ReminderDue, raw), notifier.on_reminder)


@router.subscriber(topics.CONTACT_RECORDED, **keyed_batch_options("notify.contacts"))
async def on_contact_recorded(_bodies: Any, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume_in_key_order(resources.dead_letters, message.raw_message,  # type: ignore[arg-type]
                               lambda raw: parse_model(ContactRecorded, raw), notifier.record_contact)


@router.subscriber(topics.SMS_RECEIPTS, **keyed_batch_options("notify.receipts"))
async def on_delivery_reported(_bodies: Any, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    notifier: Notifier = resources.extras["notifier"]
    await consume_in_key_order(resources.dead_letters, message.raw_message,  # type: ignore[arg-type]
                               lambda raw: parse_event(topics.SMS_RECEIPTS, raw), notifier.on_receipt)
