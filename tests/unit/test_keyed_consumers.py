"""The platform's busy subscribers (review's state changes and submissions; notify's state changes,
contacts and receipts) take a fetched batch and handle it `in_key_order`: one application's events
one after another in offset order, different applications at once. One at a time, a burst of 150
applications' state changes queued behind each handler's database round trips (the lifecycle
benchmark); at once, each application's order must still hold."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord

import services.notify.handlers as notify_handlers
import services.review.handlers as review_handlers
from subsidy.messaging import KEYED_LANES


def record(key: str, offset: int, partition: int) -> ConsumerRecord:
    body = json.dumps({"application_no": key, "offset": offset}).encode()
    return ConsumerRecord("t", partition, offset, 0, 0, key.encode(), body, None, 0, len(body), [])


def burst() -> list[ConsumerRecord]:
    """Twelve applications' events over three partitions, three events each, interleaved as a fetch returns them."""
    records = []
    for round_ in range(3):
        for app in range(12):
            records.append(record(f"LG2025-0000{app:02d}", round_ * 12 + app, partition=app % 3))
    return records


class Recorder:
    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.in_flight = self.peak = 0
        self.seen: list[tuple[str, int]] = []

    async def effect(self, event: dict[str, Any]) -> None:
        key = event["application_no"]
        self.running[key] = self.running.get(key, 0) + 1
        assert self.running[key] == 1, "two events of one application at once"
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.002 * (40 - event["offset"]) / 10)  # later events are quicker: order must not come from timing
        self.seen.append((key, event["offset"]))
        self.in_flight -= 1
        self.running[key] -= 1


def as_parsed(raw: bytes) -> dict[str, Any]:
    return json.loads(raw)


def subscribers(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Each subscriber's handler, with its effect replaced by the recorder's."""
    monkeypatch.setattr(review_handlers, "parse_state_changed", as_parsed)
    monkeypatch.setattr(review_handlers, "parse_model", lambda _model, raw: as_parsed(raw))
    monkeypatch.setattr(review_handlers.tasks, "on_state_changed", lambda _pool, event, _temporal: recorder.effect(event))
    monkeypatch.setattr(review_handlers.rules, "record_submission", lambda _pool, event: recorder.effect(event))
    monkeypatch.setattr(notify_handlers, "parse_state_changed", as_parsed)
    monkeypatch.setattr(notify_handlers, "parse_model", lambda _model, raw: as_parsed(raw))
    monkeypatch.setattr(notify_handlers, "parse_event", lambda _topic, raw: as_parsed(raw))
    return {
        "review.tasks": review_handlers.on_state_changed,
        "review.submissions": review_handlers.on_submission_recorded,
        "notify.state-changes": notify_handlers.on_state_changed,
        "notify.contacts": notify_handlers.on_contact_recorded,
        "notify.receipts": notify_handlers.on_delivery_reported,
    }


@pytest.mark.parametrize("group", ["review.tasks", "review.submissions", "notify.state-changes", "notify.contacts", "notify.receipts"])
async def test_a_fetched_batch_is_handled_by_application_in_order_and_applications_at_once(
    group: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    handler = subscribers(recorder, monkeypatch)[group]
    notifier = SimpleNamespace(on_state_changed=recorder.effect, record_contact=recorder.effect, on_receipt=recorder.effect)
    resources = SimpleNamespace(pool="the pool", temporal="the client", dead_letters=None, extras={"notifier": notifier})
    records = burst()

    await handler._original_call(None, SimpleNamespace(raw_message=tuple(records)), resources)

    assert sorted(recorder.seen) == sorted((r.key.decode(), r.offset) for r in records)  # each once
    for key in {r.key.decode() for r in records}:
        assert [o for k, o in recorder.seen if k == key] == sorted(r.offset for r in records if r.key.decode() == key)
    lanes = review_handlers.SUBMISSION_LANES if group == "review.submissions" else KEYED_LANES
    assert recorder.peak == lanes  # twelve applications, at most that many at once

