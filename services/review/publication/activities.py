"""Publication activities of the review service: the public-notice list (公示) of a program batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from services.review import repository
from services.review.notice.service import NoticeService
from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import (
    ACTIVITY_CLOSE_NOTICE,
    ACTIVITY_ENLIST_FOR_PUBLICATION,
    ACTIVITY_NOTIFY_PUBLISHED,
    ACTIVITY_RECORD_NOTICE,
    PUBLICATION_BATCH,
    SIGNAL_ENLIST,
    SIGNAL_PUBLISHED,
    CloseNotice,
    EnlistForPublication,
    NoticeClosed,
    NotifyPublished,
    PublicationBatchState,
    RecordNotice,
    RecordPublication,
)
from subsidy.contracts.topics import PUBLICATION_PUBLISHED
from subsidy.contracts.workflow_ids import publication_batch_workflow_id
from subsidy.outbox import write_event

log = structlog.get_logger(__name__)


class PublicationActivities:
    def __init__(self, pool: asyncpg.Pool, temporal: Client):
        self.pool = pool
        self.temporal = temporal
        self.notices = NoticeService(pool, temporal)

    @activity.defn(name=ACTIVITY_ENLIST_FOR_PUBLICATION)
    async def enlist(self, request: EnlistForPublication) -> None:
        """Signal-with-start: the batch workflow is started by its first application."""
        await self.temporal.start_workflow(
            PUBLICATION_BATCH,
            PublicationBatchState(program=request.program),
            id=publication_batch_workflow_id(request.program),
            task_queue=task_queues.WORKFLOWS,
            start_signal=SIGNAL_ENLIST,
            start_signal_args=[request],
        )
        async with self.pool.acquire() as conn:  # on the list: now the administrator's task
            await repository.open_publication_task(conn, request.program, request.application_no, datetime.now(UTC))

    @activity.defn(name=ACTIVITY_RECORD_NOTICE)
    async def record_notice(self, request: RecordNotice) -> None:
        """Store the list as published and announce it (outbox), once per notice id."""
        notice = request.notice
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await repository.store_notice(conn, request.program, notice.notice_id, notice.published_at,
                                                     notice.actor.id, request.entries)
            if notice.period_ends_at is not None:  # the list as people read it, version 1 (issue 13)
                await self.notices.store_first_version(conn, request.program, notice, request.entries)
            if not inserted:
                return  # a retried activity
            await write_event(
                conn,
                topic=PUBLICATION_PUBLISHED,
                key=request.program,
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"publication:{notice.notice_id}")),
                payload={
                    "program": request.program,
                    "notice_id": notice.notice_id,
                    "published_at": notice.published_at.isoformat(),
                    "entries": [e.model_dump(mode="json", exclude={"workflow_id"}) for e in request.entries],
                },
            )
        log.info("public notice recorded", program=request.program, notice_id=notice.notice_id, entries=len(request.entries))

    @activity.defn(name=ACTIVITY_NOTIFY_PUBLISHED)
    async def notify_published(self, request: NotifyPublished) -> None:
        """Tell each lifecycle on the list; one already closed (withdrawn meanwhile) is skipped."""
        publication = RecordPublication(
            actor=request.notice.actor, notice_id=request.notice.notice_id, published_at=request.notice.published_at
        )
        final = {e.workflow_id: e for e in request.final_entries}
        for workflow_id in request.workflow_ids:
            told = publication
            if workflow_id in request.removed:  # an upheld objection took it off the list
                told = publication.model_copy(update={"removed": True})
            elif workflow_id in final:  # the final list's amount (an upheld objection may have changed it)
                told = publication.model_copy(update={"award_fen": final[workflow_id].award_fen, "tier": final[workflow_id].tier})
            try:
                await self.temporal.get_workflow_handle(workflow_id).signal(SIGNAL_PUBLISHED, told)
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
                log.warning("lifecycle already closed, not told of publication", workflow_id=workflow_id)
            activity.heartbeat()

    @activity.defn(name=ACTIVITY_CLOSE_NOTICE)
    async def close_notice(self, request: CloseNotice) -> NoticeClosed:
        """The notice period has ended (the batch's timer): final unless objections are open."""
        return await self.notices.close(request.notice_id)

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.enlist, self.record_notice, self.notify_published, self.close_notice]
