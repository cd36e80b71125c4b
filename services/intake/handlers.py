"""Kafka entrypoints of the intake service: parse, hand over to the service layer, or DLQ.

SMS delivery receipts (`sms.receipts.v1`) are not consumed here: the notify service owns them (it
knows which message belongs to which application and notice) and tells the lifecycle workflow.
"""

from __future__ import annotations

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.intake.service import Intake
from subsidy.contracts.events import parse_event
from subsidy.contracts.topics import EVENT_TYPES_BY_TOPIC, SMS_RECEIPTS
from subsidy.failpoints import crash_if_armed
from subsidy.messaging import consume, raw_body, subscriber_options
from subsidy.runtime import Resources

INBOUND_TOPICS = tuple(topic for topic in EVENT_TYPES_BY_TOPIC if topic != SMS_RECEIPTS)
GROUP_ID = "intake"
# Consumers per topic in each intake process: partitions are processed in parallel, each one in order
# (per application, as the key is the application number), offsets committed after each effect.
CONSUMERS_PER_TOPIC = 3
router = KafkaRouter()


async def on_inbound_event(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    topic = message.raw_message.topic  # type: ignore[union-attr]
    intake: Intake = resources.extras["intake"]
    await consume(
        resources.dead_letters, message, body,
        lambda raw: parse_event(topic, raw, known_programs=intake.programs.keys()),
        lambda event: intake.accept(topic, event),
    )
    crash_if_armed("intake.after_commit")


for _topic in INBOUND_TOPICS:  # one subscriber per topic: concurrent manual commits need a single topic
    router.subscriber(_topic, decoder=raw_body, max_workers=CONSUMERS_PER_TOPIC, **subscriber_options(GROUP_ID))(on_inbound_event)
