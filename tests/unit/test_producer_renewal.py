"""subsidy/producer.py: which producer errors make a new producer, and that one is put in place
once for a burst of failures (the real broker restart is tests/faults, the Kafka test)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber, RequestTimedOutError, UnknownProducerId

from subsidy import producer


def test_only_errors_about_the_producer_itself_call_for_a_new_one() -> None:
    assert producer.producer_unusable(OutOfOrderSequenceNumber())
    assert producer.producer_unusable(UnknownProducerId())
    assert not producer.producer_unusable(KafkaConnectionError())  # the broker away: retry with the same producer
    assert not producer.producer_unusable(RequestTimedOutError())
    assert not producer.producer_unusable(ValueError("OutOfOrderSequenceNumber"))


class FakeState:
    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


class FakeFastProducer:
    serializer, codec = None, None

    def __init__(self) -> None:
        self._producer: Any = FakeState()
        self.connected: list[Any] = []

    async def connect(self, fresh: Any, *, serializer: Any, codec: Any) -> None:
        self.connected.append(fresh)
        self._producer = FakeState()


class FakeBroker:
    def __init__(self) -> None:
        self._connection_kwargs = {"bootstrap_servers": ["127.0.0.1:1"], "enable_idempotence": True}
        self.config = type("Config", (), {"producer": FakeFastProducer()})()


async def test_a_burst_of_unusable_producer_errors_renews_the_producer_once_and_stops_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(producer.aiokafka, "AIOKafkaProducer", lambda **kwargs: made.append(kwargs) or object())
    broker = FakeBroker()
    old = broker.config.producer._producer
    results = await asyncio.gather(*[producer.renew_producer_after(broker, OutOfOrderSequenceNumber()) for _ in range(5)])
    await asyncio.sleep(0)
    assert results == [True] * 5
    assert len(made) == 1 and made[0]["enable_idempotence"] is True
    assert old.stopped
    assert not await producer.renew_producer_after(broker, KafkaConnectionError())
    assert len(made) == 1
