"""The transactional outbox every service uses to publish (see the `outbox` table in
subsidy/db/shared_migrations/001_inbox_outbox_audit.sql).

- `write_event` (`write_events` for several in one round trip) stores an event in the caller's
  transaction, beside the state that caused it, and notifies the relay (`pg_notify`, delivered when
  that transaction commits). `outbox_ctes` puts the same into a caller's own statement.
- `OutboxRelay` publishes the stored events to Kafka and stamps them published: at-least-once,
  in id order per (topic, key), safe with any number of relays on one schema. A row that can never
  be published as it is (a permanent producer error) is set aside into `outbox_dead` with an alert
  log line (`outbox.row_set_aside`), and the rest flows; transient errors (the broker down) are
  retried forever and never set a row aside.
- `list_dead` / `requeue_dead`: the operator's `subsidy outbox dead list|requeue ID` (`subsidy.operator_arguments.add_outbox_parser`
  registers it; `run_cli` runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from subsidy.failpoints import crash_if_armed
from subsidy.log_context import CORRELATION_ID_HEADER, current_correlation_id
from subsidy.producer import renew_producer_after

EVENT_ID_HEADER = "x-event-id"
CONTENT_TYPE = "application/json"

log = structlog.get_logger(__name__)


def channel(schema: str) -> str:
    """The PostgreSQL NOTIFY channel of a schema's outbox."""
    return f"subsidy_outbox_{schema}"


@dataclass(frozen=True)
class OutboxEvent:
    topic: str
    key: str
    event_id: str
    payload: Mapping[str, Any] | BaseModel
    headers: Mapping[str, str] | None = None


async def write_event(
    conn: asyncpg.Connection,
    *,
    topic: str,
    key: str,
    event_id: str,
    payload: Mapping[str, Any] | BaseModel,
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Store one event in the outbox of the connection's schema (its search_path picks it).

    Call inside the transaction that stores the event's cause. Returns False when an event with
    this id was already written (e.g. a retried activity): nothing is written twice.
    """
    return await write_events(conn, [OutboxEvent(topic, key, event_id, payload, headers)]) == 1


async def write_events(conn: asyncpg.Connection, events: Sequence[OutboxEvent]) -> int:
    """Store several events in one statement (one round trip), in the given order; returns how
    many were new (an id already written is skipped, as in `write_event`)."""
    if not events:
        return 0
    ctes, params = outbox_ctes(events, first_param=1)
    return int(await conn.fetchval(f"WITH {ctes} SELECT {OUTBOX_WRITTEN}", *params))


# What a statement built on `outbox_ctes` selects: how many rows were new. It must be selected (or
# referenced): PostgreSQL skips an unreferenced plain CTE, and the NOTIFY is one.
OUTBOX_WRITTEN = "((SELECT count(*) FROM outbox_inserted) + 0 * (SELECT count(*) FROM outbox_notified))"


def outbox_ctes(events: Sequence[OutboxEvent], *, first_param: int) -> tuple[str, list[Any]]:
    """The common table expressions `outbox_inserted, outbox_notified` that store `events` as part
    of a caller's own statement (so that a service writes its state and its events in one round
    trip), with their parameters numbered from `$first_param`. The statement must select
    `OUTBOX_WRITTEN`. An empty `events` writes nothing and notifies no one."""
    bodies = [e.payload.model_dump(mode="json") if isinstance(e.payload, BaseModel) else dict(e.payload) for e in events]
    # The correlation id travels on: the caller's, or the one the current log context is bound to.
    correlation = current_correlation_id()
    headers = [
        {**({CORRELATION_ID_HEADER: correlation} if correlation else {}), **dict(e.headers or {})} for e in events
    ]
    n = first_param
    # The NOTIFY names the schema the INSERT resolved `outbox` in; it is delivered on commit, and
    # only when a row was actually inserted.
    ctes = f"""outbox_inserted AS (
               INSERT INTO outbox (event_id, topic, message_key, payload, headers)
               SELECT e.event_id, e.topic, e.message_key, e.payload, e.headers
               FROM unnest(${n}::uuid[], ${n + 1}::text[], ${n + 2}::text[], ${n + 3}::jsonb[], ${n + 4}::jsonb[])
                    WITH ORDINALITY AS e (event_id, topic, message_key, payload, headers, n)
               ORDER BY e.n
               ON CONFLICT (event_id) DO NOTHING
               RETURNING id),
           outbox_notified AS (
               SELECT pg_notify('subsidy_outbox_' || n.nspname, '')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.oid = 'outbox'::regclass AND EXISTS (SELECT 1 FROM outbox_inserted))"""
    params: list[Any] = [
        [uuid.UUID(e.event_id) for e in events],
        [e.topic for e in events],
        [e.key for e in events],
        [json.dumps(body, ensure_ascii=False) for body in bodies],
        [json.dumps(h, ensure_ascii=False) for h in headers],
    ]
    return ctes, params


# Producer errors that no retry can cure for this row (aiokafka's names): the row is set aside.
_PERMANENT_KAFKA_ERRORS = {
    "MessageSizeTooLargeError": "message_too_large",
    "RecordListTooLargeError": "message_too_large",
    "RecordTooLargeError": "message_too_large",
    "InvalidTopicError": "invalid_topic",
    "CorruptRecordException": "rejected_by_broker",
    "UnsupportedForMessageFormatError": "rejected_by_broker",
}


def permanent_publish_error(exc: BaseException) -> str | None:
    """The reason a publish failure is permanent for its row, or None when it is transient.

    Only errors of the row itself are permanent (too large, an invalid topic name, a record the
    broker refuses as such). Everything else, known or not (the broker down or restarting, a
    timeout, no leader, an unknown topic while metadata is stale), is transient: retried, never
    set aside. A topic that does not exist is found by `OutboxRelay` itself (it asks the broker)."""
    for kind in type(exc).__mro__:
        reason = _PERMANENT_KAFKA_ERRORS.get(kind.__name__)
        if reason is not None and kind.__module__.startswith("aiokafka"):
            return reason
    return None


class Unserializable(Exception):
    """An outbox row that cannot be made into a Kafka record (its headers are not strings)."""


@dataclass(frozen=True)
class _SetAside:
    row: asyncpg.Record
    reason: str
    detail: str


def _retrieve(ack: asyncio.Future[Any]) -> None:
    if not ack.cancelled():
        ack.exception()


class OutboxRelay:
    """Publishes a schema's unpublished outbox rows to Kafka and stamps `published_at`.

    One round: in one transaction, lock the first `batch_size` unpublished rows in id order that
    no other relay holds (`FOR UPDATE SKIP LOCKED`), hand them all to the broker's idempotent
    producer in id order (it batches them per partition and keeps their order), await the acks in
    that order, then stamp the acked rows up to the first failure in that same transaction. Delivery is at least once: a crash between a publish and the commit publishes the
    row again later, so consumers must be (and are: the inbox) idempotent by `x-event-id`.

    Order: rows of one (topic, key) are published in id order, also with several relays on the
    schema: a row is held back while an earlier unpublished row of its key is locked by another
    relay. Ids are taken at INSERT and rows become visible at COMMIT, so two transactions writing
    the same key concurrently have no defined order (the platform writes one application's
    events from its one workflow, one activity at a time).

    Loop: a full batch goes on at once; otherwise the relay waits for a NOTIFY on
    `subsidy_outbox_<schema>` (sent by `write_event`) or `poll_interval`, whichever comes first,
    then `linger` more, so that under load one round carries the rows of many commits (one
    transaction and one produce request for them instead of one each).
    A failure (Kafka or PostgreSQL down) is logged and retried after a bounded exponential
    backoff; a failed row is never skipped, the next round starts from it again.

    Dead rows: a row that can never be published as it is goes aside, in the round's transaction,
    into `outbox_dead` (with the reason; an ERROR line `outbox.row_set_aside` is the alert), and
    the round goes on with the rows after it: a row the producer refuses as such (larger than it
    may send, `permanent_publish_error`), a row whose headers cannot be serialised, and a row whose
    topic the broker says does not exist for `unknown_topic_grace` seconds (topics are created at
    deployment, auto-creation is off; meanwhile that topic's rows wait, the others flow). The
    broker not answering is never a reason: it fails the round, retried forever. Later rows of a
    dead row's key are published: its consumers see the gap (the alert names the key), an operator
    requeues the row (`requeue_dead`) once its cause is fixed.

    The relay holds one connection of `pool` while it runs (LISTEN and its transactions).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: KafkaBroker,
        *,
        schema: str,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        linger: float = 0.1,
        publish_timeout: float = 30.0,
        max_backoff: float = 30.0,
        unknown_topic_grace: float = 60.0,
        list_topics: Callable[[], Awaitable[Iterable[str]]] | None = None,
    ) -> None:
        if not schema.isidentifier():
            raise ValueError(f"not a schema name: {schema!r}")
        self._pool = pool
        self._broker = broker
        self.schema = schema
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.linger = linger
        self.publish_timeout = publish_timeout
        self.max_backoff = max_backoff
        self.unknown_topic_grace = unknown_topic_grace
        self._list_topics = list_topics or self._list_broker_topics
        self._known_topics: set[str] = set()
        self._missing_since: dict[str, float] = {}  # topic -> when the broker first said it does not exist
        self._topics_checked_at = float("-inf")
        self._channel = channel(schema)
        self._wake = asyncio.Event()  # a NOTIFY arrived, or stop()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._log = log.bind(schema=schema)
        table = f'"{schema}".outbox'
        self._select = f"""SELECT id, event_id, topic, message_key, payload::text AS payload, headers::text AS headers
                           FROM {table} WHERE published_at IS NULL
                           ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"""
        # Per key of the batch: the first earlier unpublished row this round did not lock, i.e.
        # one another relay is publishing right now. Rows of that key from there on wait.
        self._held_elsewhere = f"""SELECT o.topic, o.message_key, min(o.id) AS first_id
                                   FROM {table} o
                                   JOIN unnest($1::text[], $2::text[]) AS k (topic, message_key)
                                     ON k.topic = o.topic AND k.message_key = o.message_key
                                   WHERE o.published_at IS NULL AND o.id < $3 AND NOT (o.id = ANY ($4::bigint[]))
                                   GROUP BY o.topic, o.message_key"""
        self._stamp = f"UPDATE {table} SET published_at = now() WHERE id = ANY ($1::bigint[])"
        self._count = f"SELECT count(*) FROM {table} WHERE published_at IS NULL"
        self._set_aside = f"""WITH moved AS (DELETE FROM {table} WHERE id = $1 RETURNING *)
            INSERT INTO "{schema}".outbox_dead
                (outbox_id, event_id, topic, message_key, payload, headers, created_at, reason, detail)
            SELECT id, event_id, topic, message_key, payload, headers, created_at, $2, $3 FROM moved
            ON CONFLICT (event_id) DO UPDATE SET
                outbox_id = EXCLUDED.outbox_id, payload = EXCLUDED.payload, headers = EXCLUDED.headers,
                reason = EXCLUDED.reason, detail = EXCLUDED.detail, set_aside_at = now(),
                times_set_aside = outbox_dead.times_set_aside + 1, requeued_at = NULL, requeued_by = NULL
            RETURNING id"""

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")
        self._log.info("outbox relay started")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the current round (at most `timeout` seconds, then cancel it) and stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._log.info("outbox relay stopped")

    async def backlog(self) -> int:
        """How many rows wait to be published."""
        return int(await self._pool.fetchval(self._count))

    # -- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    conn = await self._listening_connection()
                    self._wake.clear()
                    selected, published = await self._relay_batch(conn)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    try:  # the broker no longer takes this producer's batches: a new producer, then retry
                        await renew_producer_after(self._broker, exc)
                    except Exception:
                        self._log.warning("kafka producer could not be renewed; retrying", exc_info=True)
                    delay = min(self.max_backoff, self.poll_interval * 2 ** min(failures, 16))
                    self._log.warning(
                        "outbox relay round failed; retrying", error=type(exc).__name__, retry_in_s=delay, exc_info=True
                    )
                    await self._drop_connection()
                    await self._sleep(delay, self._stop)  # a NOTIFY does not cut a backoff short
                    continue
                failures = 0
                if selected == self.batch_size and published:
                    continue
                await self._sleep(self.poll_interval, self._wake)
                await self._sleep(self.linger, self._stop)
        finally:
            await self._drop_connection()

    async def _relay_batch(self, conn: asyncpg.Connection) -> tuple[int, int]:
        """One round on `conn`; returns (rows locked, rows published or set aside)."""
        error: BaseException | None = None
        acked: list[int] = []
        dead: list[_SetAside] = []
        async with conn.transaction():
            rows = await conn.fetch(self._select, self.batch_size)
            if not rows:
                return 0, 0
            held = {
                (r["topic"], r["message_key"]): r["first_id"]
                for r in await conn.fetch(
                    self._held_elsewhere,
                    [r["topic"] for r in rows],
                    [r["message_key"] for r in rows],
                    rows[-1]["id"],
                    [r["id"] for r in rows],
                )
            }
            missing = await self._missing_topics({r["topic"] for r in rows})  # raises if the broker does not answer
            sent: list[tuple[asyncpg.Record, asyncio.Future[Any]]] = []
            try:
                async with asyncio.timeout(self.publish_timeout):
                    for row in rows:
                        first_held = held.get((row["topic"], row["message_key"]))
                        if first_held is not None and row["id"] > first_held:
                            continue  # an earlier event of this key is being published by another relay
                        if row["topic"] in missing:
                            if missing[row["topic"]]:
                                dead.append(_SetAside(row, "unknown_topic", f"topic {row['topic']} does not exist"))
                            continue  # its topic may be created soon: it waits, the rest flows
                        try:
                            ack = await self._publish(row)
                        except Unserializable as exc:
                            dead.append(_SetAside(row, "unserializable", str(exc)))
                            continue
                        except Exception as exc:
                            reason = permanent_publish_error(exc)
                            if reason is not None:
                                dead.append(_SetAside(row, reason, f"{type(exc).__name__}: {exc}"))
                                continue
                            error = exc  # not handed over: neither it nor any row after it
                            break
                        ack.add_done_callback(_retrieve)  # a failure after the round gave up is not "never retrieved"
                        sent.append((row, ack))
                    for row, ack in sent:
                        try:
                            await ack
                        except Exception as exc:
                            reason = permanent_publish_error(exc)
                            if reason is None:
                                raise
                            dead.append(_SetAside(row, reason, f"{type(exc).__name__}: {exc}"))
                            continue
                        acked.append(row["id"])
            except Exception as exc:
                error = error or exc  # stamp what was acked before the first failure, then fail the round
            if acked:
                crash_if_armed("outbox.after_publish")  # Kafka has the rows; their stamp is not committed
                await conn.execute(self._stamp, acked)
            for item in dead:
                dead_id = await conn.fetchval(self._set_aside, item.row["id"], item.reason, item.detail[:500])
                self._log.error(
                    "outbox.row_set_aside", alert="outbox_dead_row", dead_id=f"{self.schema}:{dead_id}",
                    event_id=str(item.row["event_id"]), topic=item.row["topic"], key=item.row["message_key"],
                    reason=item.reason, detail=item.detail[:500],
                    action="fix the cause, then: subsidy outbox dead requeue ID",
                )
        if error is not None:
            raise error
        return len(rows), len(acked) + len(dead)

    async def _missing_topics(self, topics: set[str]) -> dict[str, bool]:
        """The batch's topics the broker says do not exist -> whether they have been missing for
        `unknown_topic_grace` (their rows go aside) or not yet (their rows wait). A topic seen to
        exist once is not asked about again. If the broker cannot be asked, this raises: the round
        fails and is retried, no row is set aside."""
        unknown = topics - self._known_topics
        if not unknown:
            return {}
        now = time.monotonic()
        recheck = self._topics_checked_at + min(5.0, self.unknown_topic_grace / 2)
        overdue = any(now - self._missing_since.get(t, now) >= self.unknown_topic_grace for t in unknown)
        # A row is set aside only on a fresh answer of the broker (an operator may just have created the topic).
        if overdue or any(t not in self._missing_since for t in unknown) or now >= recheck:
            existing = set(await self._list_topics())
            self._topics_checked_at = now
            self._known_topics |= unknown & existing
            for topic in unknown - existing:
                self._missing_since.setdefault(topic, now)
            for topic in unknown & existing:
                self._missing_since.pop(topic, None)
        return {
            topic: now - self._missing_since[topic] >= self.unknown_topic_grace
            for topic in topics - self._known_topics
            if topic in self._missing_since
        }

    async def _list_broker_topics(self) -> set[str]:
        """The topics that exist, asked of the broker this relay publishes to."""
        from aiokafka.admin import AIOKafkaAdminClient

        servers = getattr(self._broker, "_connection_kwargs", {}).get("bootstrap_servers")
        if not servers:
            raise RuntimeError("the relay's broker names no bootstrap servers: pass list_topics")
        admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=int(min(self.publish_timeout, 15) * 1000))
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    async def _publish(self, row: asyncpg.Record) -> asyncio.Future[Any]:
        """Append the row to the producer's batch for its partition; the future is its ack."""
        event_id = str(row["event_id"])
        stored = json.loads(row["headers"])
        if not isinstance(stored, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in stored.items()):
            raise Unserializable("headers must be an object of strings")
        headers: dict[str, str] = {
            **stored,
            EVENT_ID_HEADER: event_id,
            "content-type": CONTENT_TYPE,
        }
        try:
            payload = row["payload"].encode()
        except UnicodeError as exc:  # e.g. a lone surrogate in the JSON text
            raise Unserializable(f"payload: {type(exc).__name__}") from None
        return await self._broker.publish(  # type: ignore[no-any-return]
            payload,
            topic=row["topic"],
            key=row["message_key"].encode(),
            headers=headers,
            correlation_id=headers.get(CORRELATION_ID_HEADER, event_id),
            no_confirm=True,
        )

    async def _listening_connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        await self._drop_connection()
        conn = await self._pool.acquire(timeout=self.publish_timeout)
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn = conn
        return conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not conn.is_closed():
                await conn.remove_listener(self._channel, self._on_notify)
        except Exception:  # a broken connection: the pool replaces it on release
            pass
        finally:
            await self._pool.release(conn)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self._wake.set()

    @staticmethod
    async def _sleep(seconds: float, until: asyncio.Event) -> None:
        """Sleep `seconds`, or less if `until` is set."""
        try:
            await asyncio.wait_for(until.wait(), seconds)
        except TimeoutError:
            pass


# --- dead rows: the operator's view and requeue ----------------------------------------------------


def _schema_name(schema: str) -> str:
    if not schema.isidentifier():
        raise ValueError(f"not a schema name: {schema!r}")
    return schema


async def list_dead(conn: asyncpg.Connection, schema: str, *, include_requeued: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """A schema's set-aside outbox rows, oldest first: id (`<schema>:<n>`, what `requeue_dead`
    takes), event id, topic, key, reason, detail, size; never the payload (it may hold sealed
    personal data or free text)."""
    schema = _schema_name(schema)
    rows = await conn.fetch(
        f"""SELECT id, event_id, topic, message_key, reason, detail, created_at, set_aside_at, times_set_aside,
                   requeued_at, requeued_by, octet_length(payload::text) AS payload_bytes
            FROM "{schema}".outbox_dead WHERE $1 OR requeued_at IS NULL ORDER BY id LIMIT $2""",
        include_requeued, limit,
    )
    return [{"id": f"{schema}:{r['id']}", **{k: v for k, v in dict(r).items() if k != "id"}} for r in rows]


class DeadRowNotFound(LookupError):
    """No set-aside row with this id waits for a requeue in this schema."""


async def requeue_dead(conn: asyncpg.Connection, schema: str, dead_id: int, *, actor: str) -> int:
    """Put a set-aside row back into the outbox (a new row at the end, the same event id: its
    consumers deduplicate by it), stamp the dead row requeued and audit who did it; the relay is
    woken. Returns the new outbox id. Raises DeadRowNotFound when there is no such row waiting."""
    schema = _schema_name(schema)
    async with conn.transaction():
        row = await conn.fetchrow(
            f'SELECT * FROM "{schema}".outbox_dead WHERE id = $1 AND requeued_at IS NULL FOR UPDATE', dead_id
        )
        if row is None:
            raise DeadRowNotFound(f"{schema}:{dead_id}")
        outbox_id = await conn.fetchval(
            f"""INSERT INTO "{schema}".outbox (event_id, topic, message_key, payload, headers, created_at)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            row["event_id"], row["topic"], row["message_key"], row["payload"], row["headers"], row["created_at"],
        )
        await conn.execute(
            f'UPDATE "{schema}".outbox_dead SET requeued_at = now(), requeued_by = $2 WHERE id = $1', dead_id, actor
        )
        await conn.execute(
            f"""INSERT INTO "{schema}".audit_log (actor, action, detail)
                VALUES ($1, 'outbox.dead.requeue', $2::jsonb)""",
            actor, json.dumps({"dead_id": f"{schema}:{dead_id}", "event_id": str(row["event_id"]), "topic": row["topic"],
                               "key": row["message_key"], "reason": row["reason"], "outbox_id": outbox_id}),
        )
        await conn.execute("SELECT pg_notify($1, '')", channel(schema))
    log.warning("outbox.dead_row_requeued", dead_id=f"{schema}:{dead_id}", event_id=str(row["event_id"]),
                topic=row["topic"], key=row["message_key"], actor=actor)
    return int(outbox_id)


def parse_dead_id(text: str) -> tuple[str, int]:
    """`intake:12` -> ("intake", 12)."""
    schema, sep, number = text.partition(":")
    if not sep or not schema.isidentifier() or not number.isdigit():
        raise ValueError(f"a dead row id looks like intake:12, not {text!r}")
    return schema, int(number)


def run_cli(args: argparse.Namespace, *, database_url: str | None = None, schemas: Sequence[str] | None = None) -> int:
    """`subsidy outbox dead list|requeue ID`: prints JSON lines; exit 1 with a message on stderr
    when a requeue finds no such waiting row."""
    import getpass
    import sys

    from subsidy.db.migrations import SERVICE_SCHEMAS
    from subsidy.settings import PlatformSettings

    url = database_url or PlatformSettings().database_url
    chosen = list(schemas or args.schema or SERVICE_SCHEMAS)

    async def run() -> int:
        conn = await asyncpg.connect(url)
        try:
            if args.action == "list":
                for schema in chosen:
                    for row in await list_dead(conn, schema, include_requeued=args.all, limit=args.limit):
                        print(json.dumps(row, ensure_ascii=False, default=str))
                return 0
            if not args.id:
                print("outbox dead requeue: which row? e.g. intake:12 (see: subsidy outbox dead list)", file=sys.stderr)
                return 2
            schema, dead_id = parse_dead_id(args.id)
            actor = args.actor or f"operator:{getpass.getuser()}"
            try:
                outbox_id = await requeue_dead(conn, schema, dead_id, actor=actor)
            except DeadRowNotFound:
                print(f"no set-aside row {args.id} waiting for a requeue", file=sys.stderr)
                return 1
            print(json.dumps({"requeued": args.id, "outbox_id": outbox_id, "actor": actor}))
            return 0
        finally:
            await conn.close()

    return asyncio.run(run())
