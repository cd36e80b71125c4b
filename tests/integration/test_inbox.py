"""The inbox of every schema on the real database: an event is a redelivery only when its source
and its id match (a CloudEvents id is unique only per source; issue 14, defect 1)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from subsidy.db.migrations import SERVICE_SCHEMAS
from subsidy.messaging import record_in_inbox

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("schema", SERVICE_SCHEMAS)
async def test_the_same_id_from_two_sources_is_two_events_and_each_once(stack, schema: str) -> None:
    conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": f"{schema},public"})
    event_id = f"r-{uuid.uuid4().hex}"
    try:
        async with conn.transaction():
            first = await record_in_inbox(conn, consumer="test.inbox", event_id=event_id, topic="t", source="urn:sms:aliyun")
            other_source = await record_in_inbox(conn, consumer="test.inbox", event_id=event_id, topic="t", source="urn:sms:tencent")
            again = await record_in_inbox(conn, consumer="test.inbox", event_id=event_id, topic="t", source="urn:sms:aliyun")
            platform = await record_in_inbox(conn, consumer="test.inbox", event_id=event_id, topic="t")
        await conn.execute("DELETE FROM inbox WHERE consumer = 'test.inbox' AND event_id = $1", event_id)
    finally:
        await conn.close()
    assert (first, other_source, again, platform) == (True, True, False, True)
