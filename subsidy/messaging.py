"""Kafka conventions every subscriber and producer follows.

- A subscriber has an explicit consumer group, reads from the earliest offset when its group is
  new, and commits an offset only after the handler's effect is stored (`AckPolicy.NACK_ON_ERROR`:
  a handler that raises seeks back, so the message is delivered again; never ACK_FIRST, which is
  at-most-once). A batch subscriber (intake's) commits a fetched batch once every record in it is
  handled (`in_key_order`: one key's records in order, different keys concurrently).
- The effect and the inbox row (consumer, event id) are written in one transaction: a
  redelivered event finds its id and has no second effect.
- Bad input is not dropped: it goes to `<topic>.dlq` with the reason in headers (never personal data).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.message import StreamMessage

from subsidy.contracts.topics import dlq
from subsidy.log_context import kafka_record_context

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
    "in_key_order",
    "DeadLetters",
    "consume",
    "is_transient",
    "parse_or_dlq",
    "process_reliably",
    "raw_batch",
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


async def raw_batch(message: StreamMessage[Any]) -> list[bytes]:
    """The batch form of `raw_body`: each record's bytes, undecoded (FastStream would try JSON)."""
    return [record.value or b"" for record in message.raw_message]


async def in_key_order(
    records: Sequence[ConsumerRecord], handle: Callable[[ConsumerRecord], Awaitable[None]], *, lanes: int
) -> None:
    """Handle a fetched batch: the records of one key (one application) one after another, in
    offset order; different keys concurrently, at most `lanes` keys at a time. Returns when every
    record has been handled, so the batch's offsets may then be committed (FastStream's ack).

    Records without a key keep their partition's order among themselves. If a handler raises, the
    other lanes are cancelled and the exception propagates: the subscriber seeks back to the
    batch's first offsets and the batch is delivered again (the inbox makes what was done a no-op).
    """
    by_key: dict[tuple[str, int, bytes | None], list[ConsumerRecord]] = {}
    for record in records:
        by_key.setdefault((record.topic, record.partition, record.key), []).append(record)
    slots = asyncio.Semaphore(lanes)

    async def lane(in_order: list[ConsumerRecord]) -> None:
        async with slots:
            for record in in_order:
                await handle(record)

    async with asyncio.TaskGroup() as group:
        for in_order in by_key.values():
            group.create_task(lane(in_order))


class DeadLetters:
    """Sends what cannot be processed to `<topic>.dlq`: recorded first in the service's
    `dead_letters` table (operators list and count them), then published with key and bytes
    unchanged and the reason in headers. A crash in between repeats both; neither duplicates."""

    def __init__(self, broker: Any, pool: asyncpg.Pool):
        self.broker = broker
        self.pool = pool

    async def send(self, record: ConsumerRecord, body: bytes, *, reason: str, detail: str) -> None:
        key = record.key.decode(errors="replace") if record.key else None
        await self.pool.execute(
            """INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, message_key, reason, detail)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING""",
            record.topic, record.partition, record.offset, key, reason, detail[:500],
        )
        await self.broker.publish(
            body,
            topic=dlq(record.topic),
            key=record.key,
            headers=dlq_headers(reason=reason, detail=detail, topic=record.topic, offset=record.offset),
        )
        log.warning("message sent to the DLQ", topic=record.topic, offset=record.offset, reason=reason, detail=detail)


async def parse_or_dlq(dead_letters: DeadLetters, record: ConsumerRecord, body: bytes, parse: Callable[[bytes], T]) -> T | None:
    """`parse(body)`, or, when it raises InvalidEvent, the message to the DLQ and None."""
    from subsidy.contracts.events import InvalidEvent

    try:
        return parse(body)
    except InvalidEvent as invalid:
        reason, detail = invalid.reason_code, invalid.detail
    await process_reliably(
        lambda: dead_letters.send(record, body, reason=reason, detail=detail), dead_letters=None, record=record, body=body
    )
    return None


async def consume(
    dead_letters: DeadLetters, record: ConsumerRecord, body: bytes, parse: Callable[[bytes], T], effect: Callable[[T], Awaitable[Any]]
) -> None:
    """What every subscriber does with a record: parse (bad input to the DLQ), then apply the effect
    reliably, every log line meanwhile bound to the record's application number and correlation id.
    `record` is the Kafka record (`message.raw_message` in a FastStream handler)."""
    with structlog.contextvars.bound_contextvars(**kafka_record_context(record)):
        parsed = await parse_or_dlq(dead_letters, record, body, parse)
        if parsed is not None:
            await process_reliably(lambda: effect(parsed), dead_letters=dead_letters, record=record, body=body)


# SQLSTATEs of a database that is restarting, failing over or briefly refusing: class 08
# (connection exceptions), 57P01-57P03 (admin shutdown = a fast restart, crash shutdown = an
# immediate one, cannot connect now = starting up), 25006 (a read-only transaction: a standby not
# yet promoted), serialization failures, deadlocks and too many connections.
_TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "25006", "40001", "40P01", "53300"})


def is_transient(exc: BaseException) -> bool:
    """Failures that pass by themselves (a server restarting, a network blip, a lock conflict):
    retried without limit, with backoff, never dead-lettered. Anything else is a fault of this
    message or this code. An exception raised because of a transient one (its `__cause__`, or its
    `__context__` unless raised `from None`) is transient too; an exception group is when all of its exceptions are."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def _transient_itself(exc: BaseException) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, BaseExceptionGroup):
        return all(is_transient(inner) for inner in exc.exceptions)
    if isinstance(exc, RPCError):
        return exc.status in {
            RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
            RPCStatusCode.ABORTED, RPCStatusCode.CANCELLED,
        }
    if isinstance(exc, (
        OSError, asyncio.TimeoutError,
        asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.ReadOnlySQLTransactionError,
        asyncpg.TooManyConnectionsError, asyncpg.SerializationError, asyncpg.DeadlockDetectedError,
    )):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and isinstance(sqlstate, str):
        if sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES:
            return True
    return bool(getattr(exc, "retriable", False))  # aiokafka's errors say so themselves


async def process_reliably(
    attempt: Callable[[], Awaitable[T]],
    *,
    dead_letters: DeadLetters | None,
    record: ConsumerRecord,
    body: bytes,
    max_failures: int = 5,
    first_delay: float = 0.5,
    max_delay: float = 30.0,
) -> T | None:
    """Run `attempt` until it succeeds. Transient failures (database or Temporal unavailable) are
    retried without limit with exponential backoff capped at `max_delay`: never a tight loop, never a
    skipped message. Other failures are retried `max_failures` times, then the message goes to the
    DLQ (reason `processing_failed`, the exception's type as detail) and None is returned.

    While it retries, this partition waits (offsets are committed only after the effect); past the
    consumer's max poll interval the group rebalances and another consumer takes the message over.
    """
    delay, failures = first_delay, 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if is_transient(exc):
                log.warning("transient failure, retrying", error=type(exc).__name__, retry_in_s=delay)
            else:
                failures += 1
                log.error("processing failed", error=type(exc).__name__, failures=failures, exc_info=True)
                if dead_letters is not None and failures >= max_failures:
                    error = type(exc).__name__
                    await process_reliably(
                        lambda: dead_letters.send(record, body, reason="processing_failed", detail=error),
                        dead_letters=None, record=record, body=body,
                    )
                    return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
