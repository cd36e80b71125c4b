"""Intake's commands to the lifecycle workflows: start, decisions (updates), facts (signals).

Every call is idempotent, so a redelivered event is harmless:
- a start uses the business-key workflow ID with `USE_EXISTING` on conflict (the running
  lifecycle is the answer) and `REJECT_DUPLICATE` on reuse (a closed one is never restarted);
- an update carries the inbound event's key as its update id (`service.event_key`: a uuid5 of the
  CloudEvents source and id, since an id is unique only per source), which Temporal deduplicates; intake
  waits for its outcome: applied, or refused by its validator (the workflow applies a decision in
  moments: one state-change activity; intake holds no transaction open meanwhile);
- a signal is a fact the workflow records once (it ignores what it already knows).

A refusal (wrong state, wrong role, late, closed lifecycle) is an answer, not an error: it is
returned as an `Outcome` to be recorded, and the message is not retried. "busy" (another decision,
e.g. a reviewer's, is being applied at this moment) is not a refusal: it raises LifecycleBusy and the
event is tried again with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from subsidy.contracts import task_queues
from subsidy.contracts.lifecycle import BUSY_REFUSAL, StartLifecycle
from subsidy.contracts.workflow_ids import application_workflow_id
from subsidy.programs import Program

# RPC answers that mean "this lifecycle cannot take it", as opposed to "try again later".
_CLOSED = {RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION}


class LifecycleBusy(Exception):
    """Transient: subsidy.messaging.is_transient retries it with backoff, never records it; after a
    bound (subsidy.messaging, `park_busy_after`) a message kept busy is parked in the DLQ as
    `parked_busy`, so it never holds its partition forever."""

    retriable = True
    parkable = True


@dataclass(frozen=True)
class Outcome:
    applied: bool
    reason: str | None = None

    @classmethod
    def refused(cls, reason: str) -> Outcome:
        return cls(applied=False, reason=reason)


APPLIED = Outcome(applied=True)


class LifecycleControl:
    def __init__(self, client: Client):
        self.client = client

    async def start(self, program: Program, *, application_no: str, submitted_at: datetime, correlation_id: str) -> Outcome:
        try:
            await self.client.start_workflow(
                program.lifecycle,
                StartLifecycle(
                    program=program.code,
                    application_no=application_no,
                    version=1,
                    submitted_at=submitted_at,
                    correlation_id=correlation_id,
                    policy=program.policy,
                ),
                id=application_workflow_id(program.code, application_no),
                task_queue=task_queues.WORKFLOWS,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return Outcome.refused("duplicate_submission: this application's lifecycle has already ended")
        return APPLIED

    async def update(self, program: str, application_no: str, name: str, command: Any, *, update_id: str) -> Outcome:
        handle = self.client.get_workflow_handle(application_workflow_id(program, application_no))
        try:
            await handle.execute_update(name, command, id=update_id)
        except WorkflowUpdateFailedError as refused:  # the validator's (or handler's) reason
            reason = getattr(refused.cause, "message", None) or str(refused)
            if reason.startswith(BUSY_REFUSAL):
                raise LifecycleBusy(reason) from None  # a moment's answer, not a refusal: retried
            return Outcome.refused(reason)
        except RPCError as exc:
            if exc.status in _CLOSED:
                return Outcome.refused("lifecycle_closed: the application's lifecycle has ended or does not exist")
            raise
        return APPLIED

    async def signal(self, program: str, application_no: str, name: str, fact: Any) -> Outcome:
        handle = self.client.get_workflow_handle(application_workflow_id(program, application_no))
        try:
            await handle.signal(name, fact)
        except RPCError as exc:
            if exc.status in _CLOSED:
                return Outcome.refused("lifecycle_closed: the application's lifecycle has ended or does not exist")
            raise
        return APPLIED
