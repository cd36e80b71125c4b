"""Use cases of the review service."""

from __future__ import annotations

import asyncpg

from subsidy.audit import audit_state_change_once
from subsidy.contracts.platform_events import ApplicationStateChanged

CONSUMER = "review.task-inbox"


async def on_state_changed(pool: asyncpg.Pool, event: ApplicationStateChanged) -> bool:
    """Keep the reviewers' view of an application in step with its workflow.

    The task inbox read model comes with the review issue; until then the change is audited."""
    return await audit_state_change_once(pool, consumer=CONSUMER, event=event)
