"""Kafka conventions every subscriber and producer follows.

- A subscriber has an explicit consumer group, reads from the earliest offset when its group is
  new, and commits an offset only after the handler's effect is stored (`AckPolicy.NACK_ON_ERROR`:
  a handler that raises seeks back, so the message is delivered again; never ACK_FIRST, which is
  at-most-once). A batch subscriber (intake's, and every subscriber of the platform's busy topics:
  `keyed_batch_options`) commits a fetched batch once every record in it is handled
  (`in_key_order`: one key's records in order, different keys concurrently).
- The effect and the inbox row (consumer, event id) are written in one transaction: a
  redelivered event finds its id and has no second effect.
- Bad input is not dropped: it goes to `<topic>.dlq` with the reason in headers (never personal data).
- `replay_dead_letters` puts dead letters back on their source topic (one, or all of a reason),
  refusing those that would be dead-lettered again, stamped and audited (`subsidy dlq replay`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream._internal.context import Context as _FastStreamContext
from faststream.kafka.message import KafkaMessage as _KafkaMessage
from faststream.message import StreamMessage

from subsidy.contracts.topics import INBOUND_TOPICS, dlq
from subsidy.identifiers import mask_personal_data_in, mask_personal_text
from subsidy.log_context import kafka_record_context

ACK_POLICY = AckPolicy.NACK_ON_ERROR
T = TypeVar("T")
log = structlog.get_logger(__name__)

# Header names on DLQ records.
DLQ_REASON = "x-dlq-reason"
DLQ_DETAIL = "x-dlq-detail"
DLQ_SOURCE_TOPIC = "x-dlq-source-topic"
DLQ_SOURCE_OFFSET = "x-dlq-source-offset"
DLQ_SOURCE_PARTITION = "x-dlq-source-partition"
DLQ_REDACTED = "x-dlq-redacted"  # "1": the body's ID and mobile numbers were masked (inbound topics)
DLQ_REPLAY_OF = "x-dlq-replay-of"  # on a replayed message: the dead letter it replays (<schema>:<id>)


# A heartbeat is how a group's members learn of a rebalance: when a consumer joins a group that has
# members, the join waits until every member has noticed it at its next heartbeat. Intake's group
# has one consumer per inbound topic in each process, which join one after another as it starts: at
# Kafka's default 3 s interval an intake start waited ~9 s for them, so that group heartbeats every
# half second (FAST_JOIN_HEARTBEAT_MS). Every other group has one consumer per process and joins at
# once; its heartbeats only cost: at 0.5 s the stack's eleven consumers sent 22 heartbeats a second,
# which kept the idle broker at ~0.12 core (0.05 at 3 s; the lifecycle benchmark's Kafka CPU per
# application was mostly this). The session timeout (10 s) is unchanged either way, so a dead
# consumer is noticed as before.
HEARTBEAT_INTERVAL_MS = 3000
FAST_JOIN_HEARTBEAT_MS = 500


def subscriber_options(group_id: str, *, heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS) -> dict[str, Any]:
    """Keyword arguments for `router.subscriber(...)` that make the conventions explicit.
    `heartbeat_interval_ms`: FAST_JOIN_HEARTBEAT_MS for a group whose process runs several
    consumers of it (see above)."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "ack_policy": ACK_POLICY,
        "auto_offset_reset": "earliest",
        "heartbeat_interval_ms": heartbeat_interval_ms,
    }
    session_timeout_ms = os.environ.get(SESSION_TIMEOUT_ENV)
    if session_timeout_ms:  # tests only
        options["session_timeout_ms"] = int(session_timeout_ms)
        options["heartbeat_interval_ms"] = min(heartbeat_interval_ms, int(session_timeout_ms) // 3)
    return options


# For tests that SIGKILL a consumer: the group hands the dead member's partitions to the others only
# when its session times out (Kafka's 10 s), so the next process would wait that long. Such a test
# gives the process it kills a short session (the embedded broker allows down to 1 s,
# deploy/embedded/kafka.py). Never set in deployments.
SESSION_TIMEOUT_ENV = "SUBSIDY_KAFKA_SESSION_TIMEOUT_MS"


class _AwaitedContext(_FastStreamContext):
    """FastStream's `Context()`, resolved on the event loop. fast_depends runs a parameter's plain
    `use` in a worker thread (anyio.to_thread) for every message, once per such parameter; a
    coroutine it awaits in place. The hop was 4-7% of review's and notify's CPU in the lifecycle
    benchmark (each state change reaches both). The lookup itself is a dictionary read."""

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)


def from_context(real_name: str = "") -> Any:
    """A Kafka handler's value from FastStream's context, as `Context()` gives it (by the
    parameter's name, or `real_name`): `resources: Resources = from_context()`."""
    return _AwaitedContext(real_name)


# A Kafka handler's message (FastStream's `faststream.kafka.KafkaMessage`, resolved on the loop).
ConsumedMessage = Annotated[_KafkaMessage, _AwaitedContext("message")]


async def record_in_inbox(conn: asyncpg.Connection, *, consumer: str, event_id: str, topic: str, source: str = "") -> bool:
    """Mark an event as processed by `consumer`; False if it already was (a redelivery).

    `source`: the CloudEvents source of an event from outside (an id is unique only per source);
    platform events, whose ids are our own uuids, leave it empty.
    Call inside the transaction that stores the event's effect.
    """
    inserted = await conn.fetchval(
        """INSERT INTO inbox (consumer, source, event_id, topic) VALUES ($1, $4, $2, $3)
           ON CONFLICT (consumer, source, event_id) DO NOTHING
           RETURNING true""",
        consumer,
        event_id,
        topic,
        source,
    )
    return bool(inserted)


def dlq_headers(
    *, reason: str, detail: str, topic: str, offset: int | None, partition: int | None = None
) -> dict[str, str]:
    """Headers for a DLQ record. `reason` and `detail` must already be free of personal data
    (the contracts' InvalidEvent builds them from field names, never from values)."""
    headers = {DLQ_REASON: reason, DLQ_DETAIL: detail[:500], DLQ_SOURCE_TOPIC: topic}
    if offset is not None:
        headers[DLQ_SOURCE_OFFSET] = str(offset)
    if partition is not None:
        headers[DLQ_SOURCE_PARTITION] = str(partition)
    return headers


__all__ = [
    "ACK_POLICY",
    "ConsumedMessage",
    "FAST_JOIN_HEARTBEAT_MS",
    "HEARTBEAT_INTERVAL_MS",
    "DLQ_DETAIL",
    "DLQ_REDACTED",
    "DLQ_REASON",
    "dlq",
    "dlq_headers",
    "from_context",
    "handle_once",
    "redact_dead_letter",
    "replay_dead_letters",
    "would_fail_again",
    "in_key_order",
    "consume_in_key_order",
    "keyed_batch_options",
    "KEYED_LANES",
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
    source: str = "",
) -> bool:
    """Store `effect` and the inbox row in one transaction; skip a redelivered event.

    Returns False when the event had been processed before. An exception rolls everything back
    and propagates, so the offset is not committed and the message is delivered again.
    """
    async with pool.acquire() as conn, conn.transaction():
        if not await record_in_inbox(conn, consumer=consumer, event_id=event_id, topic=topic, source=source):
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


# A platform subscriber's batch (`keyed_batch_options`): at most this many records per fetch (a
# crash repeats at most one batch's idempotent work), handled `in_key_order` with at most
# KEYED_LANES applications at once (each lane holds one pool connection while it stores an effect),
# and an idle subscriber asks the broker again after KEYED_BATCH_TIMEOUT_MS.
KEYED_MAX_RECORDS = 200
KEYED_LANES = 8
KEYED_BATCH_TIMEOUT_MS = 100


def keyed_batch_options(group_id: str, *, max_records: int = KEYED_MAX_RECORDS,
                        batch_timeout_ms: int = KEYED_BATCH_TIMEOUT_MS,
                        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS) -> dict[str, Any]:
    """`router.subscriber(topic, **keyed_batch_options(group))` for a handler that takes
    `(_bodies, message: ConsumedMessage, ...)` and passes `message.raw_message` to
    `consume_in_key_order`. A one-message subscriber handles one record at a time across all its
    partitions: a burst of state changes queued behind each handler's database round trips (the
    lifecycle benchmark's 150 applications at once). A batch is fetched from every assigned
    partition, handled one key after another within a key and different keys concurrently, and its
    offsets are committed once every record of it is handled (or dead-lettered): the same
    guarantees as one at a time (order per application, offsets after the effect, the inbox against
    a redelivered batch), without the queue."""
    return {
        "batch": True, "max_records": max_records, "batch_timeout_ms": batch_timeout_ms, "decoder": raw_batch,
        **subscriber_options(group_id, heartbeat_interval_ms=heartbeat_interval_ms),
    }


async def consume_in_key_order(
    dead_letters: DeadLetters, records: Sequence[ConsumerRecord], parse: Callable[[bytes], T],
    effect: Callable[[T], Awaitable[Any]], *, lanes: int = KEYED_LANES,
) -> None:
    """`consume` every record of a fetched batch, `in_key_order`."""

    async def handle(record: ConsumerRecord) -> None:
        await consume(dead_letters, record, record.value or b"", parse, effect)

    await in_key_order(records, handle, lanes=lanes)


def redact_dead_letter(topic: str, body: bytes) -> tuple[bytes, bool]:
    """The body a DLQ keeps: for the inbound topics (raw ID and mobile numbers from the portals,
    windows and SMS providers), every ID-like and mobile-like value masked as the logs mask them,
    numbers too, and every personal field's value (`mobile`, `id_number`, ...) whatever it looks
    like: in a JSON body value by value (so it stays JSON), otherwise (not JSON, or nested deeper
    than the contracts' MAX_JSON_DEPTH) in the text; the platform's own topics carry no raw personal
    data and are kept byte for byte (issue 14, defect 8). Returns the body and whether it is the
    redacted one. Never raises: what cannot be parsed is exactly what comes here."""
    from subsidy.contracts.events import InvalidEvent, load_json

    if topic not in INBOUND_TOPICS:
        return body, False
    try:
        decoded = load_json(body)
    except InvalidEvent:
        return mask_personal_text(body.decode("utf-8", errors="replace")).encode("utf-8"), True
    return json.dumps(mask_personal_data_in(decoded), ensure_ascii=False, separators=(",", ":")).encode("utf-8"), True


class DeadLetters:
    """Sends what cannot be processed to `<topic>.dlq`: recorded first in the service's
    `dead_letters` table (operators list and count them), then published with the key unchanged,
    the reason in headers and the body as `redact_dead_letter` keeps it (an inbound topic's with
    its ID and mobile numbers masked, header `x-dlq-redacted: 1`; such a message cannot be replayed
    when its contract needs the numbers: the source sends it again). A crash in between repeats
    both; neither duplicates."""

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
        kept, redacted = redact_dead_letter(record.topic, body)
        headers = dlq_headers(reason=reason, detail=detail, topic=record.topic, offset=record.offset, partition=record.partition)
        if redacted:
            headers[DLQ_REDACTED] = "1"
        await self.broker.publish(kept, topic=dlq(record.topic), key=record.key, headers=headers)
        log.warning("message sent to the DLQ", topic=record.topic, offset=record.offset, reason=reason, detail=detail)


async def parse_or_dlq(dead_letters: DeadLetters, record: ConsumerRecord, body: bytes, parse: Callable[[bytes], T]) -> T | None:
    """`parse(body)`, or, when it raises InvalidEvent, the message to the DLQ and None. A
    RecursionError (JSON nested too deeply for a parser that does not bound it, as `parse_event`
    does) is invalid input too, `not_json`: raised, it would hold the partition for ever."""
    from subsidy.contracts.events import TOO_DEEP, InvalidEvent

    try:
        return parse(body)
    except InvalidEvent as invalid:
        reason, detail = invalid.reason_code, invalid.detail
    except RecursionError:
        reason, detail = "not_json", TOO_DEEP
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


# How long a message may stay "busy" (a transient failure the message's own situation causes,
# `parkable = True`, e.g. intake's LifecycleBusy: another decision of the application is being
# applied behind a long-retrying activity) before it is parked in the DLQ, so that it no longer
# holds up its partition's batch. An operator replays it (`subsidy dlq replay --reason parked_busy`).
PARK_BUSY_AFTER_S = 600.0
PARKED_BUSY = "parked_busy"


async def process_reliably(
    attempt: Callable[[], Awaitable[T]],
    *,
    dead_letters: DeadLetters | None,
    record: ConsumerRecord,
    body: bytes,
    max_failures: int = 5,
    first_delay: float = 0.5,
    max_delay: float = 30.0,
    park_busy_after: float | None = PARK_BUSY_AFTER_S,
) -> T | None:
    """Run `attempt` until it succeeds. Transient failures (database or Temporal unavailable, a
    PostgreSQL restart) are retried without limit with exponential backoff capped at `max_delay`:
    never a tight loop, never a skipped message, never dead-lettered. Other failures are retried
    `max_failures` times, then the message goes to the DLQ (reason `processing_failed`, the
    exception's type as detail) and None is returned. A transient failure that the exception marks
    `parkable` ("busy": the message's own situation, not the infrastructure) is retried for
    `park_busy_after` seconds, then the message is parked in the DLQ (reason `parked_busy`) and None
    is returned: it no longer holds up its partition, and an operator sees and replays it.

    While it retries, this partition waits (offsets are committed only after the effect); past the
    consumer's max poll interval the group rebalances and another consumer takes the message over.
    """
    loop = asyncio.get_running_loop()
    delay, failures = first_delay, 0
    busy_since: float | None = None
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if is_transient(exc):
                if getattr(exc, "parkable", False) and dead_letters is not None and park_busy_after is not None:
                    busy_since = loop.time() if busy_since is None else busy_since
                    if loop.time() - busy_since >= park_busy_after:
                        detail = f"{type(exc).__name__}: still busy after {park_busy_after:.0f} s"
                        await process_reliably(
                            lambda: dead_letters.send(record, body, reason=PARKED_BUSY, detail=detail),
                            dead_letters=None, record=record, body=body,
                        )
                        return None
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


# --- replaying dead letters (`subsidy dlq replay`) ------------------------------------------------


@dataclass(frozen=True)
class DlqRecord:
    """One record of a `<topic>.dlq` topic: the dead-lettered message as it was, and our headers."""

    key: bytes | None
    value: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Replay:
    """What became of one dead letter: `replayed` (then `offset` on the source topic), `refused`
    (`why`), or `would_replay` (a dry run)."""

    dead_letter: str  # <schema>:<id>
    topic: str
    reason: str
    outcome: str
    why: str | None = None
    offset: int | None = None


ReadDlq = Callable[[str], Awaitable[Sequence[DlqRecord]]]
Publish = Callable[[str, bytes | None, bytes, dict[str, str]], Awaitable[int]]
Check = Callable[[str, bytes], str | None]


def would_fail_again(topic: str, body: bytes) -> str | None:
    """Why `body`, put back on `topic`, would be dead-lettered again at parsing (its subscriber's
    contract: `<reason code>: <detail>`, field names only), or None when it parses now. A topic
    without a known contract cannot be checked: that is a reason to refuse too."""
    from subsidy.contracts import topics
    from subsidy.contracts.events import InvalidEvent
    from subsidy.contracts.lifecycle import ReminderDue
    from subsidy.contracts.platform_events import ContactRecorded, SubmissionRecorded, parse_model, parse_state_changed
    from subsidy.programs import programs
    from subsidy.programs.inbound import parse_inbound

    parsers: dict[str, Callable[[bytes], Any]] = {
        topics.APPLICATION_STATE_CHANGED: parse_state_changed,
        topics.DEADLINE_REMINDER_DUE: lambda raw: parse_model(ReminderDue, raw),
        topics.CONTACT_RECORDED: lambda raw: parse_model(ContactRecorded, raw),
        topics.SUBMISSION_RECORDED: lambda raw: parse_model(SubmissionRecorded, raw),
    }
    parse = parsers.get(topic)
    if parse is None and topic in topics.EVENT_TYPES_BY_TOPIC:
        known = programs()
        parse = lambda raw: parse_inbound(topic, raw, known)  # noqa: E731  (as intake's consumer parses)
    if parse is None:
        return f"no_contract: messages of {topic} cannot be checked before a replay"
    try:
        parse(body)
    except InvalidEvent as invalid:
        return f"{invalid.reason_code}: {invalid.detail}"
    return None


def _dlq_match(records: Sequence[DlqRecord], row: asyncpg.Record) -> DlqRecord | None:
    """The DLQ record of a `dead_letters` row: same source topic and offset, and the same source
    partition (records written before that header: the same key)."""
    key = row["message_key"].encode() if row["message_key"] is not None else None
    for record in records:
        h = record.headers
        if h.get(DLQ_SOURCE_TOPIC) != row["topic"] or h.get(DLQ_SOURCE_OFFSET) != str(row["kafka_offset"]):
            continue
        if DLQ_SOURCE_PARTITION in h:
            if h[DLQ_SOURCE_PARTITION] == str(row["kafka_partition"]):
                return record
        elif record.key == key:
            return record
    return None


async def replay_dead_letters(
    conn: asyncpg.Connection,
    *,
    schema: str,
    actor: str,
    read_dlq: ReadDlq,
    publish: Publish,
    ids: Sequence[int] | None = None,
    reason: str | None = None,
    topic: str | None = None,
    check: Check = would_fail_again,
    dry_run: bool = False,
) -> list[Replay]:
    """Put dead letters of `schema` back on their source topic: those with `ids`, or every one not
    yet replayed with `reason` (optionally only of `topic`). Each is refused when its message is
    gone from the DLQ topic, was replayed already, or would be dead-lettered again (`check`: its
    contract still refuses it; a `processing_failed` one is replayed, the operator having fixed
    its cause). A replayed one is published with its key and bytes unchanged (consumers are
    idempotent by event id), then stamped in `dead_letters`, in one transaction with the audit row;
    every refusal is audited too. `dry_run`: judged, nothing published, stamped or audited."""
    if not schema.isidentifier():
        raise ValueError(f"not a schema name: {schema!r}")
    if not ids and not reason:
        raise ValueError("name the dead letters to replay: ids, or a reason")
    rows = await conn.fetch(
        f"""SELECT * FROM "{schema}".dead_letters
            WHERE (($1::bigint[] IS NOT NULL AND id = ANY ($1::bigint[]))
                   OR ($1::bigint[] IS NULL AND reason = $2 AND replayed_at IS NULL))
              AND ($3::text IS NULL OR topic = $3)
            ORDER BY id""",
        list(ids) if ids else None, reason, topic,
    )
    found_ids = {r["id"] for r in rows}
    outcomes = [Replay(f"{schema}:{i}", topic or "", "", "refused", "not_found: no such dead letter") for i in ids or [] if i not in found_ids]
    dlq_records: dict[str, Sequence[DlqRecord]] = {}
    for row in rows:
        name = f"{schema}:{row['id']}"
        why: str | None = None
        record: DlqRecord | None = None
        if row["replayed_at"] is not None:
            why = f"already_replayed: at {row['replayed_at'].isoformat()} by {row['replayed_by']}"
        else:
            if row["topic"] not in dlq_records:
                dlq_records[row["topic"]] = await read_dlq(dlq(row["topic"]))
            record = _dlq_match(dlq_records[row["topic"]], row)
            if record is None:
                why = "body_not_found: the message is no longer on the DLQ topic (retention) or never reached it"
            else:
                why = check(row["topic"], record.value)
                if why is not None:
                    why = f"would_fail_again: {why}"
        if why is not None:
            outcomes.append(Replay(name, row["topic"], row["reason"], "refused", why))
            if not dry_run:
                await _audit(conn, schema, actor, "dlq.replay_refused", row, {"why": why})
            log.warning("dead letter not replayed", dead_letter=name, topic=row["topic"], reason=row["reason"], why=why)
            continue
        assert record is not None
        if dry_run:
            outcomes.append(Replay(name, row["topic"], row["reason"], "would_replay"))
            continue
        async with conn.transaction():
            still = await conn.fetchval(
                f'SELECT replayed_at IS NULL FROM "{schema}".dead_letters WHERE id = $1 FOR UPDATE', row["id"]
            )
            if not still:  # another operator replayed it meanwhile
                outcomes.append(Replay(name, row["topic"], row["reason"], "refused", "already_replayed"))
                continue
            offset = await publish(row["topic"], record.key, record.value, {DLQ_REPLAY_OF: name})
            await conn.execute(
                f"""UPDATE "{schema}".dead_letters SET replayed_at = now(), replayed_by = $2, replay_offset = $3
                    WHERE id = $1""",
                row["id"], actor, offset,
            )
            await _audit(conn, schema, actor, "dlq.replay", row, {"replay_offset": offset})
        outcomes.append(Replay(name, row["topic"], row["reason"], "replayed", offset=offset))
        log.warning("dead letter replayed", dead_letter=name, topic=row["topic"], reason=row["reason"], actor=actor)
    return outcomes


async def _audit(conn: asyncpg.Connection, schema: str, actor: str, action: str, row: asyncpg.Record, extra: dict[str, Any]) -> None:
    detail = {
        "dead_letter": f"{schema}:{row['id']}", "topic": row["topic"], "partition": row["kafka_partition"],
        "offset": row["kafka_offset"], "key": row["message_key"], "reason": row["reason"], **extra,
    }
    await conn.execute(
        f'INSERT INTO "{schema}".audit_log (application_no, actor, action, detail) VALUES ($1, $2, $3, $4::jsonb)',
        row["message_key"], actor, action, json.dumps(detail, ensure_ascii=False),
    )


async def read_dlq_topic(bootstrap_servers: str, topic: str) -> list[DlqRecord]:
    """Every record of a DLQ topic (one partition) up to its current end."""
    import uuid

    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=f"dlq-replay-{uuid.uuid4()}", enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or {0}
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: list[DlqRecord] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(*assigned, timeout_ms=1000)).values():
                found += [DlqRecord(r.key, r.value or b"", {k: v.decode(errors="replace") for k, v in r.headers}) for r in batch]
        return found
    finally:
        await consumer.stop()


def run_replay_cli(
    args: argparse.Namespace, *, database_url: str, bootstrap_servers: str, check: Check = would_fail_again,
    schemas: Sequence[str] | None = None,
) -> int:
    """`subsidy dlq replay (--id SCHEMA:ID ... | --reason R [--topic T] [--schema S]) [--dry-run]`:
    one JSON line per dead letter; exit 1 when any was refused, 2 on a usage error."""
    import getpass
    import sys

    from subsidy.db.migrations import SERVICE_SCHEMAS

    wanted: dict[str, list[int]] = {}
    for text in args.ids or []:
        schema, sep, number = text.partition(":")
        if not sep or not schema.isidentifier() or not number.isdigit():
            print(f"dlq replay: a dead letter id looks like intake:12, not {text!r}", file=sys.stderr)
            return 2
        wanted.setdefault(schema, []).append(int(number))
    if not wanted and not args.reason:
        print("dlq replay: name the dead letters: --id SCHEMA:ID, or --reason R", file=sys.stderr)
        return 2
    actor = args.actor or f"operator:{getpass.getuser()}"

    async def run() -> list[Replay]:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True)
        await producer.start()

        async def publish(topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> int:
            meta = await producer.send_and_wait(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
            return int(meta.offset)

        conn = await asyncpg.connect(database_url)
        try:
            done: list[Replay] = []
            targets = list(wanted) if wanted else list(schemas or args.schema or SERVICE_SCHEMAS)
            for schema in targets:
                done += await replay_dead_letters(
                    conn, schema=schema, actor=actor, ids=wanted.get(schema), reason=None if wanted else args.reason,
                    topic=getattr(args, "topic", None), check=check, dry_run=args.dry_run,
                    read_dlq=lambda t: read_dlq_topic(bootstrap_servers, t), publish=publish,
                )
            return done
        finally:
            await conn.close()
            await producer.stop()

    outcomes = asyncio.run(run())
    for outcome in outcomes:
        print(json.dumps({k: v for k, v in outcome.__dict__.items() if v is not None}, ensure_ascii=False))
    return 1 if any(o.outcome == "refused" for o in outcomes) else 0
