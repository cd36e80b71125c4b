"""Intake's lifecycle activities (task queue `subsidy-intake`): intake owns the application
aggregate's read side and publishes what the lifecycle workflows decide, through its outbox.

Both activities are idempotent by the workflow's event id: a retried activity writes nothing twice.
Their log lines are bound to the application and the correlation id by subsidy.log_context.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from subsidy.contracts.lifecycle import ACTIVITY_RECORD_REMINDER, ACTIVITY_RECORD_STATE_CHANGE, ReminderDue, StateChange
from subsidy.contracts.platform_events import ApplicationStateChanged
from subsidy.contracts.topics import APPLICATION_STATE_CHANGED, DEADLINE_REMINDER_DUE
from subsidy.outbox import CORRELATION_ID_HEADER, write_event

log = structlog.get_logger(__name__)


def _event_uuid(event_id: str) -> uuid.UUID:
    """The workflow's event id (workflow.uuid4()); anything else is a bug no retry can fix."""
    try:
        return uuid.UUID(event_id)
    except ValueError:
        raise ApplicationError("event_id is not a UUID", type="InvalidEventId", non_retryable=True) from None


def state_changed_event(change: StateChange) -> ApplicationStateChanged:
    """The platform event a recorded state change becomes, with every typed field the workflow set
    (a change from an older workflow worker has none: its event says `contract_revision` 1)."""
    return ApplicationStateChanged(
        event_id=change.event_id,
        program=change.program,
        application_no=change.application_no,
        from_state=change.from_status.value if change.from_status is not None else None,
        to_state=change.to_status.value,
        reason=change.reason,
        actor=change.actor,
        deadline=change.deadline,
        occurred_at=change.occurred_at,
        correlation_id=change.correlation_id,
        version=change.version,
        contract_revision=change.contract_revision,
        notice_kind=change.notice_kind.value if change.notice_kind is not None else None,
        reasons=change.reasons,
        award_fen=change.award_fen,
        tier=change.tier,
        notice_id=change.notice_id,
        awaiting_step=change.awaiting_step,
        window_code=change.window_code,
        gd_case_no=change.gd_case_no,
        form_id=change.form_id,
    )


class LifecycleActivities:
    """`lifecycle.record_state_change` and `lifecycle.record_reminder`, over intake's schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def all(self) -> Sequence[Callable[..., Any]]:
        return (self.record_state_change, self.record_reminder)

    @activity.defn(name=ACTIVITY_RECORD_STATE_CHANGE)
    async def record_state_change(self, change: StateChange) -> None:
        """Store the change, move the application's read model, and write the state-changed event,
        in one transaction. A change already recorded (same event id) is a no-op."""
        event_id = _event_uuid(change.event_id)
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """INSERT INTO state_changes (event_id, application_no, program, from_status, to_status, reason,
                                              actor, deadline, occurred_at, correlation_id, version)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (event_id) DO NOTHING
                   RETURNING true""",
                event_id,
                change.application_no,
                change.program,
                change.from_status.value if change.from_status is not None else None,
                change.to_status.value,
                change.reason,
                change.actor,
                change.deadline,
                change.occurred_at,
                change.correlation_id,
                change.version,
            )
            if not inserted:
                log.info("state change already recorded", to_status=change.to_status.value)
                return
            # A change older than the one the read model shows (only possible if a workflow ever
            # recorded changes concurrently) is kept in state_changes but does not move the status.
            await conn.execute(
                """INSERT INTO applications (application_no, program, status, version, deadline, status_since, correlation_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (application_no) DO UPDATE
                   SET status = EXCLUDED.status, version = EXCLUDED.version, deadline = EXCLUDED.deadline,
                       status_since = EXCLUDED.status_since, correlation_id = EXCLUDED.correlation_id, updated_at = now()
                   WHERE applications.status_since <= EXCLUDED.status_since""",
                change.application_no,
                change.program,
                change.to_status.value,
                change.version,
                change.deadline,
                change.occurred_at,
                change.correlation_id,
            )
            await write_event(
                conn,
                topic=APPLICATION_STATE_CHANGED,
                key=change.application_no,
                event_id=change.event_id,
                payload=state_changed_event(change),
                headers={CORRELATION_ID_HEADER: change.correlation_id},
            )
        log.info(
            "state change recorded",
            from_status=change.from_status.value if change.from_status is not None else None,
            to_status=change.to_status.value,
        )

    @activity.defn(name=ACTIVITY_RECORD_REMINDER)
    async def record_reminder(self, reminder: ReminderDue) -> None:
        """Write the reminder-due event for notify; once per event id."""
        _event_uuid(reminder.event_id)
        async with self._pool.acquire() as conn, conn.transaction():
            written = await write_event(
                conn,
                topic=DEADLINE_REMINDER_DUE,
                key=reminder.application_no,
                event_id=reminder.event_id,
                payload=reminder,
                headers={CORRELATION_ID_HEADER: reminder.correlation_id},
            )
        log.info(
            "reminder recorded" if written else "reminder already recorded",
            working_days_left=reminder.working_days_left,
        )
