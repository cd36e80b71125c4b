"""Kafka entrypoints of the notify service."""

from __future__ import annotations

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.notify import service
from subsidy.contracts.platform_events import parse_state_changed
from subsidy.contracts.topics import APPLICATION_STATE_CHANGED
from subsidy.messaging import parse_or_dlq, process_reliably, raw_body, subscriber_options
from subsidy.runtime import Resources

GROUP_ID = "notify"
router = KafkaRouter()


@router.subscriber(APPLICATION_STATE_CHANGED, decoder=raw_body, **subscriber_options(GROUP_ID))
async def on_state_changed(body: bytes, message: KafkaMessage, resources: Resources = Context()) -> None:
    event = await parse_or_dlq(resources.dead_letters, message, body, parse_state_changed)
    if event is not None:
        await process_reliably(
            lambda: service.on_state_changed(resources.pool, event), dead_letters=resources.dead_letters, message=message, body=body
        )
