"""A service's Kafka producer made anew when the broker no longer accepts it (issue 14, faults).

The producer is idempotent (`enable_idempotence=True`): the broker keeps its producer id and the
sequence number of each partition. When the broker stops with batches in flight and starts again,
it may answer every later batch of that producer with `OutOfOrderSequenceNumber` (or
`UnknownProducerId`, a fenced or stale epoch). The Java client then resets its producer id;
aiokafka does not, so every publish of the process failed for good: after the fault test stopped
Kafka for a minute, intake's webhook still answered 503 and its outbox stalled minutes after the
broker was back (tests/faults/test_faults.py, the Kafka test).

Such an error says this producer instance is unusable, not that the broker is down: a new producer
(a new id, sequences from zero) takes its place, at most once per `MIN_INTERVAL_S` per broker.
What was not acknowledged is published again by its caller (the outbox relay at least once, its
consumers deduplicating by event id; the webhook's sender after its 503).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import aiokafka
import structlog

log = structlog.get_logger(__name__)

UNUSABLE = frozenset({"OutOfOrderSequenceNumber", "UnknownProducerId", "InvalidProducerEpoch", "ProducerFenced",
                      "InvalidProducerIdMapping"})
MIN_INTERVAL_S = 5.0

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
_renewed_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def producer_unusable(exc: BaseException) -> bool:
    """Is `exc` aiokafka's word that the broker will not take this producer's batches any more?"""
    return any(kind.__name__ in UNUSABLE and kind.__module__.startswith("aiokafka") for kind in type(exc).__mro__)


async def renew_producer_after(broker: Any, exc: BaseException) -> bool:
    """If `exc` says the producer is unusable, put a new one in place on `broker` (a faststream
    KafkaBroker) and return True; otherwise do nothing and return False."""
    if not producer_unusable(exc):
        return False
    lock = _locks.setdefault(broker, asyncio.Lock())
    async with lock:
        if time.monotonic() - _renewed_at.get(broker, float("-inf")) < MIN_INTERVAL_S:
            return True  # another caller met the same error and renewed it just now
        fast = broker.config.producer  # faststream's AioKafkaFastProducerImpl (faststream is pinned in uv.lock)
        old = getattr(fast, "_producer", None)
        fresh = aiokafka.AIOKafkaProducer(**broker._connection_kwargs)
        await fast.connect(fresh, serializer=fast.serializer, codec=fast.codec)  # starts it, then publishes go to it
        _renewed_at[broker] = time.monotonic()
    log.warning("kafka producer renewed: the broker no longer accepted the old one", error=type(exc).__name__)
    if old is not None:
        asyncio.get_running_loop().create_task(_stop_quietly(old))
    return True


async def _stop_quietly(state: Any) -> None:
    """Stop the old producer (its unsent batches fail; their callers publish them again)."""
    try:
        await asyncio.wait_for(state.stop(), 30)
    except Exception:  # noqa: BLE001 - it is being thrown away
        pass
