"""What `subsidy.messaging` retries without limit (transient) and what it dead-letters after a few
tries: a PostgreSQL restart (fast or immediate shutdown, a standby promoted, the server starting
up) and a lost connection are transient, never a reason to dead-letter an event."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from subsidy.messaging import is_transient, process_reliably

RESTART_ERRORS = [
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),  # 57P01: fast shutdown
    asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),  # 57P02
    asyncpg.CannotConnectNowError("the database system is starting up"),  # 57P03
    asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),  # 25006: a standby
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.ConnectionFailureError("connection failure"),
    ConnectionResetError("reset by peer"),
]


@pytest.mark.parametrize("error", RESTART_ERRORS, ids=lambda e: type(e).__name__)
def test_a_database_restart_or_a_lost_connection_is_transient(error: Exception) -> None:
    assert is_transient(error)


def test_a_restart_error_wrapped_by_the_code_that_met_it_is_transient() -> None:
    try:
        try:
            raise asyncpg.AdminShutdownError("terminating connection due to administrator command")
        except asyncpg.AdminShutdownError as cause:
            raise RuntimeError("storing the effect failed") from cause
    except RuntimeError as wrapped:
        assert is_transient(wrapped)


@pytest.mark.parametrize(
    "error",
    [ValueError("bad"), KeyError("x"), asyncpg.UniqueViolationError("dup"), asyncpg.UndefinedColumnError("no column")],
    ids=lambda e: type(e).__name__,
)
def test_faults_of_the_message_or_the_code_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, record: Any, body: bytes, *, reason: str, detail: str) -> None:
        self.sent.append((reason, detail))


def record() -> ConsumerRecord:
    return ConsumerRecord(
        topic="t", partition=0, offset=7, timestamp=0, timestamp_type=0, key=b"LG-1", value=b"{}",
        checksum=None, serialized_key_size=4, serialized_value_size=2, headers=(),
    )


async def test_an_event_met_by_a_postgres_restart_more_than_max_failures_times_is_applied_not_dead_lettered() -> None:
    failures = list(RESTART_ERRORS) * 2  # fourteen in a row: far more than max_failures
    dead_letters = RecordingDeadLetters()

    async def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "applied"

    result = await process_reliably(
        attempt, dead_letters=dead_letters, record=record(), body=b"{}",  # type: ignore[arg-type]
        max_failures=5, first_delay=0.001, max_delay=0.002,
    )
    assert result == "applied"
    assert dead_letters.sent == []


async def test_a_fault_of_the_message_is_still_dead_lettered_after_max_failures() -> None:
    dead_letters = RecordingDeadLetters()
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise ValueError("a fault of this message")

    result = await process_reliably(
        attempt, dead_letters=dead_letters, record=record(), body=b"{}",  # type: ignore[arg-type]
        max_failures=5, first_delay=0.001, max_delay=0.002,
    )
    assert result is None and calls == 5
    assert dead_letters.sent == [("processing_failed", "ValueError")]


# --- JSON nested too deeply: the DLQ, not a partition held for ever ------------------------------


async def test_json_nested_too_deeply_goes_to_the_dlq_as_not_json_and_the_consumer_moves_on() -> None:
    from subsidy.contracts import topics
    from subsidy.contracts.events import parse_event
    from subsidy.messaging import consume

    dead_letters, effects = RecordingDeadLetters(), []

    async def effect(parsed: Any) -> None:
        effects.append(parsed)

    topic = topics.PORTAL_LONGGANG_APPLICATIONS
    for levels in (300, 100_000):  # refused by the bound; too deep for Python's parser itself
        body = b'{"specversion":"1.0","data":' + b"[" * levels + b"]" * levels + b"}"
        await consume(dead_letters, record(), body, lambda raw: parse_event(topic, raw), effect)  # type: ignore[arg-type]
    assert dead_letters.sent == [("not_json", "JSON nested too deeply (more than 64 levels)")] * 2 and effects == []


async def test_a_parser_that_recurses_too_deep_dead_letters_the_message_instead_of_raising() -> None:
    from subsidy.messaging import parse_or_dlq

    def parse(raw: bytes) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    dead_letters = RecordingDeadLetters()
    assert await parse_or_dlq(dead_letters, record(), b"[[[]]]", parse) is None  # type: ignore[arg-type]
    assert [reason for reason, _ in dead_letters.sent] == ["not_json"]


# --- dlq replay: what would fail again ----------------------------------------------------------


def test_a_message_its_contract_still_refuses_would_fail_again_and_a_valid_one_would_not() -> None:
    from subsidy.contracts import topics
    from subsidy.messaging import would_fail_again
    from tests.fixtures import events

    topic, _source, _build = events.EXAMPLES[topics.LONGGANG_APPLICATION_SUBMITTED]
    valid = events.encode(events.envelope(topics.LONGGANG_APPLICATION_SUBMITTED, events.EXAMPLES[topics.LONGGANG_APPLICATION_SUBMITTED][2]()))
    assert would_fail_again(topic, valid) is None
    assert (would_fail_again(topic, b'{"specversion": "1.0", ') or "").startswith("not_json")
    assert (would_fail_again(topics.APPLICATION_STATE_CHANGED, b'{"event_id": "x"}') or "").startswith("invalid_payload")
    assert (would_fail_again("some.topic.without.contract", b"{}") or "").startswith("no_contract")
    # Parsed as intake's consumer parses: a Shenzhen submission naming the Longgang program would fail again.
    mismatch_topic, mismatch = events.example_event(topics.SHENZHEN_APPLICATION_SUBMITTED)
    mismatch["data"]["program"] = "LG-AI-MODEL-2025"
    assert (would_fail_again(mismatch_topic, events.encode(mismatch)) or "").startswith("program_mismatch")


def test_a_dead_letter_row_is_matched_to_its_dlq_record_by_source_topic_partition_and_offset() -> None:
    from subsidy.messaging import DlqRecord, _dlq_match, dlq_headers

    row = {"topic": "t", "kafka_partition": 2, "kafka_offset": 7, "message_key": "LG-1"}
    other_partition = DlqRecord(b"LG-1", b"a", dlq_headers(reason="r", detail="d", topic="t", offset=7, partition=1))
    ours = DlqRecord(b"LG-1", b"b", dlq_headers(reason="r", detail="d", topic="t", offset=7, partition=2))
    legacy = DlqRecord(b"LG-1", b"c", dlq_headers(reason="r", detail="d", topic="t", offset=7))  # before the partition header
    assert _dlq_match([other_partition, ours], row) is ours  # type: ignore[arg-type]
    assert _dlq_match([other_partition, legacy], row) is legacy  # type: ignore[arg-type]
    assert _dlq_match([other_partition], row) is None  # type: ignore[arg-type]


# --- a message kept busy is parked, not retried forever -----------------------------------------


class StillBusy(Exception):
    retriable = True
    parkable = True  # the message's own situation (intake's LifecycleBusy), not the infrastructure


async def test_a_message_kept_busy_longer_than_the_bound_is_parked_in_the_dlq() -> None:
    dead_letters = RecordingDeadLetters()
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise StillBusy()

    result = await asyncio.wait_for(process_reliably(
        attempt, dead_letters=dead_letters, record=record(), body=b"{}",  # type: ignore[arg-type]
        first_delay=0.01, max_delay=0.02, park_busy_after=0.2,
    ), 10)
    assert result is None and calls > 2
    assert dead_letters.sent == [("parked_busy", "StillBusy: still busy after 0 s")]


async def test_an_unavailable_database_is_never_parked_however_long_it_lasts() -> None:
    dead_letters = RecordingDeadLetters()
    loop = asyncio.get_running_loop()
    until = loop.time() + 0.5

    async def attempt() -> str:
        if loop.time() < until:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        return "stored"

    result = await process_reliably(
        attempt, dead_letters=dead_letters, record=record(), body=b"{}",  # type: ignore[arg-type]
        first_delay=0.01, max_delay=0.02, park_busy_after=0.1,
    )
    assert result == "stored" and dead_letters.sent == []


async def test_a_handler_gets_its_message_and_resources_without_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ConsumedMessage` and `from_context()` resolve on the event loop: FastStream's own `Context()`
    sent every message through anyio's thread pool, once per such parameter (4-7% of review's and
    notify's CPU in the lifecycle benchmark)."""
    import anyio.to_thread
    from faststream.kafka import KafkaBroker, TestKafkaBroker

    from subsidy.messaging import ConsumedMessage, from_context, raw_body

    hops: list[Any] = []
    real_run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    broker = KafkaBroker("localhost:9092")
    broker.context.set_global("resources", {"pool": "the pool"})
    got: list[tuple[bytes, str, Any]] = []

    @broker.subscriber("t.handler", group_id="g", decoder=raw_body)
    async def handle(body: bytes, message: ConsumedMessage, resources: Any = from_context()) -> None:
        got.append((body, message.raw_message.topic, resources["pool"]))

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"{}", topic="t.handler")

    assert got == [(b"{}", "t.handler", "the pool")]
    assert hops == []
