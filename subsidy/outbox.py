"""The transactional outbox every service uses to publish (see the `outbox` table in
subsidy/db/shared_migrations/001_inbox_outbox_audit.sql).

- `write_event` (`write_events` for several in one round trip) stores an event in the caller's
  transaction, beside the state that caused it, and notifies the relay (`pg_notify`, delivered when
  that transaction commits). `outbox_ctes` puts the same into a caller's own statement.
- `OutboxRelay` publishes the stored events to Kafka and stamps them published: at-least-once,
  in id order per (topic, key), safe with any number of relays on one schema.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from subsidy.log_context import CORRELATION_ID_HEADER, current_correlation_id

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
        """One round on `conn`; returns (rows locked, rows published)."""
        error: BaseException | None = None
        acked: list[int] = []
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
            sent: list[tuple[int, asyncio.Future[Any]]] = []
            try:
                async with asyncio.timeout(self.publish_timeout):
                    for row in rows:
                        first_held = held.get((row["topic"], row["message_key"]))
                        if first_held is not None and row["id"] > first_held:
                            continue  # an earlier event of this key is being published by another relay
                        try:
                            ack = await self._publish(row)
                        except Exception as exc:
                            error = exc  # not handed over: neither it nor any row after it
                            break
                        ack.add_done_callback(_retrieve)  # a failure after the round gave up is not "never retrieved"
                        sent.append((row["id"], ack))
                    for row_id, ack in sent:
                        await ack
                        acked.append(row_id)
            except Exception as exc:
                error = error or exc  # stamp what was acked before the first failure, then fail the round
            if acked:
                await conn.execute(self._stamp, acked)
        if error is not None:
            raise error
        return len(rows), len(acked)

    async def _publish(self, row: asyncpg.Record) -> asyncio.Future[Any]:
        """Append the row to the producer's batch for its partition; the future is its ack."""
        event_id = str(row["event_id"])
        headers: dict[str, str] = {
            **json.loads(row["headers"]),
            EVENT_ID_HEADER: event_id,
            "content-type": CONTENT_TYPE,
        }
        return await self._broker.publish(  # type: ignore[no-any-return]
            row["payload"].encode(),
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
