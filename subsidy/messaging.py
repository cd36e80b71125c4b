"""Kafka conventions every subscriber and producer follows.

- A subscriber has an explicit consumer group, reads from the earliest offset when its group is
  new, and commits an offset only after the handler's effect is stored (`AckPolicy.NACK_ON_ERROR`:
  a handler that raises seeks back, so the message is delivered again; never ACK_FIRST, which is
  at-most-once).
- The effect and the inbox row (consumer, event id) are written in one transaction: a
  redelivered event finds its id and has no second effect.
- Bad input is not dropped: it goes to `<topic>.dlq` with the reason in headers (never personal data).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import structlog
from faststream import AckPolicy
from faststream.message import StreamMessage

from subsidy.contracts.topics import dlq

ACK_POLICY = AckPolicy.NACK_ON_ERROR
T = TypeVar("T")
log = structlog.get_logger(__name__)

# Header names on DLQ records.
DLQ_REASON = "x-dlq-reason"
DLQ_DETAIL = "x-dlq-detail"
DLQ_SOURCE_TOPIC = "x-dlq-source-topic"
DLQ_SOURCE_OFFSET = "x-dlq-source-offset"


def subscriber_options(group_id: str) -> dict[str, Any]:
    """Keyword arguments for `router.subscriber(...)` that make the conventions explicit."""
    return {
        "group_id": group_id,
        "ack_policy": ACK_POLICY,
        "auto_offset_reset": "earliest",
    }


async def record_in_inbox(conn: asyncpg.Connection, *, consumer: str, event_id: str, topic: str) -> bool:
    """Mark an event as processed by `consumer`; False if it already was (a redelivery).

    Call inside the transaction that stores the event's effect.
    """
    inserted = await conn.fetchval(
        """INSERT INTO inbox (consumer, event_id, topic) VALUES ($1, $2, $3)
           ON CONFLICT (consumer, event_id) DO NOTHING
           RETURNING true""",
        consumer,
        event_id,
        topic,
    )
    return bool(inserted)


def dlq_headers(*, reason: str, detail: str, topic: str, offset: int | None) -> dict[str, str]:
    """Headers for a DLQ record. `reason` and `detail` must already be free of personal data
    (the contracts' InvalidEvent builds them from field names, never from values)."""
    headers = {DLQ_REASON: reason, DLQ_DETAIL: detail[:500], DLQ_SOURCE_TOPIC: topic}
    if offset is not None:
        headers[DLQ_SOURCE_OFFSET] = str(offset)
    return headers


__all__ = [
    "ACK_POLICY",
    "DLQ_DETAIL",
    "DLQ_REASON",
    "dlq",
    "dlq_headers",
    "handle_once",
    "parse_or_dlq",
    "publish_to_dlq",
    "raw_body",
    "record_in_inbox",
    "subscriber_options",
]


async def handle_once(
    pool: asyncpg.Pool,
    *,
    consumer: str,
    event_id: str,
    topic: str,
    effect: Callable[[asyncpg.Connection], Awaitable[None]],
) -> bool:
    """Store `effect` and the inbox row in one transaction; skip a redelivered event.

    Returns False when the event had been processed before. An exception rolls everything back
    and propagates, so the offset is not committed and the message is delivered again.
    """
    async with pool.acquire() as conn, conn.transaction():
        if not await record_in_inbox(conn, consumer=consumer, event_id=event_id, topic=topic):
            return False
        await effect(conn)
        return True


async def raw_body(message: StreamMessage[Any]) -> bytes:
    """A FastStream decoder that hands the handler the raw bytes: the handler validates them
    itself, so input that is not even JSON reaches the DLQ instead of failing in the framework."""
    return bytes(message.body)


async def parse_or_dlq(broker: Any, message: Any, body: bytes, parse: Callable[[bytes], T]) -> T | None:
    """`parse(body)`, or, when it raises InvalidEvent, the message to the DLQ and None."""
    from subsidy.contracts.events import InvalidEvent

    try:
        return parse(body)
    except InvalidEvent as invalid:
        await publish_to_dlq(broker, message, body, reason=invalid.reason_code, detail=invalid.detail)
        log.warning("message sent to the DLQ", topic=message.raw_message.topic, reason=invalid.reason_code, detail=invalid.detail)
        return None


async def publish_to_dlq(broker: Any, message: Any, body: bytes, *, reason: str, detail: str) -> None:
    """Put a message that cannot be processed on `<topic>.dlq`, key and bytes unchanged."""
    record = message.raw_message
    await broker.publish(
        body,
        topic=dlq(record.topic),
        key=record.key,
        headers=dlq_headers(reason=reason, detail=detail, topic=record.topic, offset=record.offset),
    )
