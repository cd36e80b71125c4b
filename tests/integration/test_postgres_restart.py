"""PostgreSQL restarted (fast and immediate shutdown) while an event's effect is being written:
the effect is retried until the server is back and stored once; the event is never dead-lettered
for it (issue 14, defect 5). The real server of the embedded stack is stopped and started again.

asyncpg reports the server's 57P01 on a statement in flight as ConnectionDoesNotExistError (its
message carries the server's), which was transient already; the classification of the SQLSTATEs
themselves (57P01-57P03, 25006, met e.g. at connection set-up or on a demoted primary) is
tests/unit/test_messaging.py."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from deploy.embedded import stack as embedded_stack
from subsidy.messaging import process_reliably

pytestmark = pytest.mark.integration


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, record: Any, body: bytes, *, reason: str, detail: str) -> None:
        self.sent.append((reason, detail))


def restart_postgres(run_dir: Any, mode: str) -> None:
    """Stop the stack's PostgreSQL (fast: SIGINT, what `stop_component` sends; immediate: SIGQUIT
    to the postmaster) and start it again on the same port with its data."""
    if mode == "immediate":
        record = embedded_stack.StackState.load(run_dir).processes["postgres"]
        os.kill(record.pid, signal.SIGQUIT)
    embedded_stack.stop_component("postgres", run_dir, progress=lambda _m: None)
    embedded_stack.up(run_dir, progress=lambda _m: None)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_an_effect_interrupted_by_a_postgresql_restart_is_stored_once_and_not_dead_lettered(stack, mode: str) -> None:
    state = embedded_stack.StackState.load(stack.run_dir)
    if state.external_database:
        pytest.fail("this test restarts the embedded stack's PostgreSQL; DATABASE_URL names an external server")
    marker = f"pg-restart-{uuid.uuid4().hex}"
    in_flight = asyncio.Event()
    attempts = 0
    dead_letters = RecordingDeadLetters()
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2, timeout=5)

    async def effect() -> str:
        """One statement, like intake's write of an event's effect (no explicit transaction: the
        server's error reaches the caller as it is, not masked by a failed rollback)."""
        nonlocal attempts
        attempts += 1
        sleep = 30 if attempts == 1 else 0
        async with pool.acquire(timeout=5) as conn:
            if attempts == 1:
                in_flight.set()
            await conn.execute(  # the first attempt is still sleeping when the restart hits it
                """INSERT INTO review.audit_log (actor, action, application_no)
                   SELECT 'test', 'pg-restart', $1 FROM pg_sleep($2)""", marker, sleep,
            )
        return "stored"

    record = ConsumerRecord(
        topic="t", partition=0, offset=1, timestamp=0, timestamp_type=0, key=b"k", value=b"{}",
        checksum=None, serialized_key_size=1, serialized_value_size=2, headers=(),
    )
    try:
        processing = asyncio.create_task(process_reliably(
            effect, dead_letters=dead_letters, record=record, body=b"{}",  # type: ignore[arg-type]
            max_failures=1, first_delay=0.2, max_delay=1.0,  # one failure classed permanent would dead-letter it
        ))
        await asyncio.wait_for(in_flight.wait(), 30)
        await asyncio.to_thread(restart_postgres, stack.run_dir, mode)
        result = await asyncio.wait_for(processing, 120)
        stored = await pool.fetchval("SELECT count(*) FROM review.audit_log WHERE application_no = $1", marker)
    finally:
        await pool.close()
    assert result == "stored"
    assert dead_letters.sent == []
    assert stored == 1 and attempts >= 2
