"""`in_key_order`, the batch handling of intake's subscribers: one key's records in offset order,
different keys at the same time (at most `lanes`), and a failure stops the batch."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord

from subsidy.messaging import in_key_order


def record(key: bytes | None, offset: int, partition: int = 0, topic: str = "t") -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, key, b"", None, 0, 0, [])


async def test_one_keys_records_run_one_after_another_in_offset_order() -> None:
    records = [record(b"A", 0), record(b"B", 1), record(b"A", 2), record(b"B", 3), record(b"A", 4)]
    running: dict[bytes, int] = {}
    seen: list[tuple[bytes, int]] = []

    async def handle(r: ConsumerRecord) -> None:
        running[r.key] = running.get(r.key, 0) + 1
        assert running[r.key] == 1, "two records of one key at once"
        await asyncio.sleep(0.01 * (5 - r.offset))  # later records are quicker: order must not come from timing
        seen.append((r.key, r.offset))
        running[r.key] -= 1

    await in_key_order(records, handle, lanes=8)
    assert [o for k, o in seen if k == b"A"] == [0, 2, 4]
    assert [o for k, o in seen if k == b"B"] == [1, 3]


async def test_different_keys_run_concurrently_up_to_the_lanes() -> None:
    records = [record(f"K{i}".encode(), i, partition=i % 3) for i in range(12)]
    in_flight = peak = 0

    async def handle(_r: ConsumerRecord) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1

    await in_key_order(records, handle, lanes=4)
    assert peak == 4


async def test_records_without_a_key_keep_their_partitions_order() -> None:
    records = [record(None, o, partition=o % 2) for o in range(6)]
    seen: list[tuple[int, int]] = []

    async def handle(r: ConsumerRecord) -> None:
        await asyncio.sleep(0.001 * (6 - r.offset))
        seen.append((r.partition, r.offset))

    await in_key_order(records, handle, lanes=8)
    assert [o for p, o in seen if p == 0] == [0, 2, 4]
    assert [o for p, o in seen if p == 1] == [1, 3, 5]


async def test_a_failure_cancels_the_other_lanes_and_propagates() -> None:
    records = [record(b"bad", 0), record(b"slow", 1), record(b"bad", 2)]
    handled: list[int] = []
    cancelled = asyncio.Event()

    async def handle(r: ConsumerRecord) -> None:
        if r.key == b"bad":
            raise RuntimeError("broken")
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        handled.append(r.offset)

    with pytest.raises(ExceptionGroup) as failure:
        await asyncio.wait_for(in_key_order(records, handle, lanes=8), 2)
    assert failure.group_contains(RuntimeError, match="broken")
    assert cancelled.is_set() and handled == []  # the record after the failed one of its key never ran either
