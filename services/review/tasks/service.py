"""Keeping the task read model and the application history in step with the lifecycles.

Each event's effect and its inbox row are one transaction (subsidy.messaging.handle_once): a
redelivered event changes nothing. One application's state changes share a Kafka key, hence a
partition, hence arrive in order; opening a task is idempotent all the same (one open task per
application and step, one task per opening event), and a change older than the one the read
model holds only joins the history.
"""

from __future__ import annotations

import asyncpg
from temporalio.client import Client

from services.review import repository
from services.review.awards import service as awards
from services.review.notice.service import tell_batch, withdrawn_during_notice
from subsidy.contracts.platform_events import ApplicationStateChanged, PhoneTaskCreated
from subsidy.contracts.topics import APPLICATION_STATE_CHANGED, PHONE_TASK_CREATED
from subsidy.messaging import handle_once

STATE_CONSUMER = "review.tasks"
PHONE_CONSUMER = "review.phone-tasks"


async def on_state_changed(pool: asyncpg.Pool, event: ApplicationStateChanged, temporal: Client) -> bool:
    list_changed: list[bool] = []  # (set in the transaction; told after its commit)

    async def effect(conn: asyncpg.Connection) -> None:
        await repository.apply_state_change(conn, event)
        await awards.compute_on_arrival(conn, event)  # LG: the award computed when the award task opens
        if await withdrawn_during_notice(conn, event):  # withdrawn while its list is public: off the list
            list_changed.append(True)

    handled = await handle_once(pool, consumer=STATE_CONSUMER, event_id=event.event_id,
                                topic=APPLICATION_STATE_CHANGED, effect=effect)
    if list_changed:  # after the commit (a lost signal: the batch asks hourly); a batch past its period may be final now
        await tell_batch(temporal, event.program)
    return handled


async def on_phone_task(pool: asyncpg.Pool, event: PhoneTaskCreated) -> bool:
    return await handle_once(
        pool, consumer=PHONE_CONSUMER, event_id=event.event_id, topic=PHONE_TASK_CREATED,
        effect=lambda conn: repository.open_phone_task(conn, event),
    )
