"""Use cases of the notify service."""

from __future__ import annotations

import asyncpg

from subsidy.audit import audit_state_change_once
from subsidy.contracts.platform_events import ApplicationStateChanged

CONSUMER = "notify.notices"


async def on_state_changed(pool: asyncpg.Pool, event: ApplicationStateChanged) -> bool:
    """Pick the SMS notice for a state change.

    Templates and providers come with the notify issue; until then the change is audited."""
    return await audit_state_change_once(pool, consumer=CONSUMER, event=event)
