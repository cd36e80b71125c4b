"""Kafka entrypoints of the intake service: parse, hand over to the service layer, or DLQ.

Each inbound topic has one batch subscriber per intake process. A fetched batch is handled in
`in_key_order`: the events of one application one after another, different applications
concurrently (up to LANES_PER_TOPIC workflow commands in flight, a setting); the batch's offsets are
committed once every event in it is stored (or dead-lettered). A crash before that commit means
the batch is delivered again, and the inbox turns what was already stored into no-ops.

SMS delivery receipts (`sms.receipts.v1`) are not consumed here: the notify service owns them (it
knows which message belongs to which application and notice) and tells the lifecycle workflow.
"""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter

from services.intake.service import Intake
from services.intake.settings import IntakeSettings
from subsidy.contracts.topics import EVENT_TYPES_BY_TOPIC, SMS_RECEIPTS
from subsidy.failpoints import crash_if_armed
from subsidy.programs.inbound import parse_inbound
from subsidy.messaging import (
    FAST_JOIN_HEARTBEAT_MS, ConsumedMessage, consume, from_context, in_key_order, keyed_batch_options,
)
from subsidy.runtime import Resources

INBOUND_TOPICS = tuple(topic for topic in EVENT_TYPES_BY_TOPIC if topic != SMS_RECEIPTS)
GROUP_ID = "intake"
# At most this many records per fetched batch: a crash repeats at most one batch's (idempotent) work.
BATCH_MAX_RECORDS = 500
router = KafkaRouter()


async def on_inbound_batch(_bodies: Any, message: ConsumedMessage, resources: Resources = from_context()) -> None:
    intake: Intake = resources.extras["intake"]
    settings: IntakeSettings = resources.settings  # type: ignore[assignment]

    async def handle(record: ConsumerRecord) -> None:
        await consume(
            resources.dead_letters, record, record.value or b"",
            lambda raw: parse_inbound(record.topic, raw, intake.programs),
            lambda event: intake.accept(record.topic, event),
        )

    await in_key_order(message.raw_message, handle, lanes=settings.lanes_per_topic)  # type: ignore[arg-type]
    crash_if_armed("intake.after_commit")  # every effect of the batch committed, its offsets not yet


for _topic in INBOUND_TOPICS:
    router.subscriber(
        _topic, **keyed_batch_options(GROUP_ID, max_records=BATCH_MAX_RECORDS,
                                      heartbeat_interval_ms=FAST_JOIN_HEARTBEAT_MS),  # four per process
    )(on_inbound_batch)
