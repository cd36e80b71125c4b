"""Kafka entrypoints of the intake service: parse, hand over to the service layer, or DLQ."""

from __future__ import annotations

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.intake import service
from subsidy.contracts.events import parse_event
from subsidy.contracts.topics import EVENT_TYPES_BY_TOPIC
from subsidy.messaging import parse_or_dlq, raw_body, subscriber_options
from subsidy.runtime import Resources

INBOUND_TOPICS = tuple(EVENT_TYPES_BY_TOPIC)
GROUP_ID = "intake"
router = KafkaRouter()


@router.subscriber(*INBOUND_TOPICS, decoder=raw_body, **subscriber_options(GROUP_ID))
async def on_inbound_event(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    topic = message.raw_message.topic  # type: ignore[union-attr]
    event = await parse_or_dlq(resources.broker, message, body, lambda raw: parse_event(topic, raw))
    if event is not None:
        await service.record_received(resources.pool, topic=topic, event=event)
