"""Use cases of the intake service: an inbound event is stored once and becomes a workflow start,
a decision (update) or a fact (signal) for its application's lifecycle.

One transaction per event holds the inbox row, what is stored, the workflow command's outcome and,
for a refused submission, the `subsidy.intake.rejected.v1` event (outbox). The workflow command runs
inside it: if the commit then fails, the redelivered event repeats the command, which is
idempotent (see lifecycle_control), so nothing is lost and nothing is applied twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
import structlog

from services.intake import repository
from services.intake.lifecycle_control import APPLIED, LifecycleControl, Outcome
from subsidy.contracts import topics
from subsidy.contracts.events import ParsedEvent
from subsidy.contracts.platform_events import ContactRecorded, SubmissionRecorded
from subsidy.contracts.lifecycle import (
    Actor,
    AppointmentBooked,
    FormDownloaded,
    RecordGuangdongSubmission,
    RecordPaperReceipt,
    Resubmit,
    Role,
    Withdraw,
)
from subsidy.crypto import PersonalDataCipher
from subsidy.log_context import current_correlation_id
from subsidy.messaging import record_in_inbox
from subsidy.outbox import OutboxEvent, write_event, write_events
from subsidy.programs import Program

CONSUMER = "intake.inbound"
SUBMITTED = {topics.LONGGANG_APPLICATION_SUBMITTED, topics.SHENZHEN_APPLICATION_SUBMITTED}
RESUBMITTED = {topics.LONGGANG_APPLICATION_RESUBMITTED, topics.SHENZHEN_APPLICATION_RESUBMITTED}
WITHDRAWN = {topics.LONGGANG_APPLICATION_WITHDRAWN, topics.SHENZHEN_APPLICATION_WITHDRAWN}
PERSONAL_FIELDS = ("id_number", "mobile")  # payload keys holding personal data; also the lookup kinds
PEOPLE = ("legal_representative", "contact")  # applicant keys describing persons
log = structlog.get_logger(__name__)


@dataclass
class Intake:
    pool: asyncpg.Pool
    control: LifecycleControl
    cipher: PersonalDataCipher
    programs: dict[str, Program]

    async def accept(self, topic: str, event: ParsedEvent) -> Outcome | None:
        """Apply a valid inbound event once; None when it was processed before (a redelivery).
        A portal's event starts a correlation chain: its id is the correlation id from here on."""
        envelope = event.envelope
        with structlog.contextvars.bound_contextvars(
            application_no=envelope.subject, correlation_id=current_correlation_id() or envelope.id
        ):
            return await self._accept(topic, event)

    async def _accept(self, topic: str, event: ParsedEvent) -> Outcome | None:
        envelope = event.envelope
        async with self.pool.acquire() as conn, conn.transaction():
            if not await record_in_inbox(conn, consumer=CONSUMER, event_id=envelope.id, topic=topic):
                log.info("event already processed", application_no=envelope.subject, event_type=envelope.type)
                return None
            outcome = await self._apply(conn, event)
            await repository.record_inbound(
                conn, event_id=envelope.id, topic=topic, type=envelope.type, source=envelope.source,
                application_no=envelope.subject, event_time=envelope.time, applied=outcome.applied, reason=outcome.reason,
            )
            if not outcome.applied and envelope.type in SUBMITTED:
                await self._report_rejection(conn, event, outcome)
        log.info(
            "event applied" if outcome.applied else "event refused",
            application_no=envelope.subject, event_type=envelope.type, reason=outcome.reason,
        )
        return outcome

    async def _apply(self, conn: asyncpg.Connection, event: ParsedEvent) -> Outcome:
        kind = event.envelope.type
        if kind in SUBMITTED:
            return await self._first_submission(conn, event)
        if kind in RESUBMITTED:
            return await self._resubmission(conn, event)
        program = await repository.program_of(conn, event.envelope.subject)
        if program is None:
            return Outcome.refused("unknown_application: no submission of this application was received")
        handler = self._commands.get(kind)
        if handler is None:
            return Outcome.refused(f"not_for_intake: {kind} is handled by another service")
        return await handler(self, program, event)

    # --- submissions -----------------------------------------------------------------------------

    async def _first_submission(self, conn: asyncpg.Connection, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        program = self.programs[data.program]
        if not program.filing.accepts(data.submitted_at):
            window = program.filing
            return Outcome.refused(
                f"outside_filing_window: first submissions are accepted from {window.opens_at.isoformat()} "
                f"to {window.closes_at.isoformat()}"  # type: ignore[union-attr]
            )
        if not await self._store_version(conn, event, version=1):  # version 1 exists
            return Outcome.refused("duplicate_submission: this application was already submitted; send a resubmission")
        return await self.control.start(
            program, application_no=data.application_no, submitted_at=data.submitted_at, correlation_id=event.envelope.id
        )

    async def _resubmission(self, conn: asyncpg.Connection, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        latest = await repository.latest_version(conn, data.application_no)
        if not latest:
            return Outcome.refused("unknown_application: a resubmission needs a first submission")
        version = latest + 1
        outcome = await self.control.update(
            data.program, data.application_no, "resubmit",
            Resubmit(actor=_portal(event), version=version, submitted_at=data.submitted_at),
            update_id=event.envelope.id,
        )
        if outcome.applied and not await self._store_version(conn, event, version=version):
            # Another transaction stored this version since `latest_version` (only one consumer
            # owns the partition, so this is not expected): fail, roll back and redeliver.
            raise RuntimeError("a concurrent resubmission stored this version first")
        return outcome

    async def _store_version(self, conn: asyncpg.Connection, event: ParsedEvent, *, version: int) -> bool:
        """Store the submission as `version`; False when that version exists (nothing written)."""
        data: Any = event.payload
        payload = data.model_dump(mode="json")
        sealed, lookups = self._seal_personal_data(data.application_no, payload)
        if not await repository.insert_version(
            conn,
            application_no=data.application_no,
            version=version,
            program=data.program,
            event_id=event.envelope.id,
            submitted_at=data.submitted_at,
            applicant_uscc=data.applicant.uscc,
            payload=payload,
            sealed=sealed,
            lookups=lookups,
            materials=payload.get("materials", []),
        ):
            return False
        submission_id = _derived_id("submission", event)
        recorded = [OutboxEvent(  # the facts review pre-checks, without the people in them
            topic=topics.SUBMISSION_RECORDED,
            key=data.application_no,
            event_id=submission_id,
            payload=SubmissionRecorded(
                event_id=submission_id,
                program=data.program,
                application_no=data.application_no,
                version=version,
                applicant_uscc=data.applicant.uscc,
                submitted_at=data.submitted_at,
                facts=_without_people(payload),
                recorded_at=event.envelope.time,
            ),
        )]
        if "applicant.contact.mobile" in sealed:  # whom notify texts about this application
            contact_id = _derived_id("contact", event)
            recorded.append(OutboxEvent(
                topic=topics.CONTACT_RECORDED,
                key=data.application_no,
                event_id=contact_id,
                payload=ContactRecorded(
                    event_id=contact_id,
                    program=data.program,
                    application_no=data.application_no,
                    version=version,
                    applicant_name=data.applicant.name,
                    contact_mobile_sealed=sealed["applicant.contact.mobile"],
                    recorded_at=event.envelope.time,
                ),
            ))
        await write_events(conn, recorded)
        return True

    def _seal_personal_data(self, application_no: str, payload: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
        """Replace every resident ID and mobile number in the payload (in place) by null, sealing
        it with AES-GCM (bound to the application and field) and hashing it for lookups."""
        sealed: dict[str, Any] = {}
        lookups: list[tuple[str, str, str]] = []

        def walk(node: Any, path: str) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    field = f"{path}.{key}" if path else key
                    if key in PERSONAL_FIELDS and isinstance(value, str):
                        sealed[field] = self.cipher.encrypt(value, context=f"{application_no}:{field}")
                        lookups.append((field, key, self.cipher.lookup_hash(key, value)))
                        node[key] = None
                    else:
                        walk(value, field)
            elif isinstance(node, list):
                for index, item in enumerate(node):
                    walk(item, f"{path}[{index}]")

        walk(payload, "")
        return sealed, lookups

    async def _report_rejection(self, conn: asyncpg.Connection, event: ParsedEvent, outcome: Outcome) -> None:
        data: Any = event.payload
        await write_event(
            conn,
            topic=topics.INTAKE_REJECTED,
            key=data.application_no,
            event_id=_derived_id("intake-rejected", event),
            payload={
                "event_id": event.envelope.id,
                "program": data.program,
                "application_no": data.application_no,
                "submitted_at": data.submitted_at.isoformat(),
                "reason": outcome.reason,
            },
        )

    # --- later events: decisions (updates) and facts (signals) ------------------------------------

    async def _withdrawal(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        command = Withdraw(actor=_portal(event), withdrawn_at=data.withdrawn_at, reason=data.reason)
        return await self.control.update(program, data.application_no, "withdraw", command, update_id=event.envelope.id)

    async def _form_downloaded(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        fact = FormDownloaded(form_id=data.form_id, downloaded_at=data.downloaded_at)
        return await self.control.signal(program, data.application_no, "form_downloaded", fact)

    async def _guangdong_submission(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        command = RecordGuangdongSubmission(
            actor=_portal(event), gd_case_no=data.gd_case_no, form_id=data.form_id,
            form_sha256=data.form_sha256, received_at=data.received_at,
        )
        return await self.control.update(program, data.application_no, "record_guangdong_submission", command, update_id=event.envelope.id)

    async def _appointment(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        fact = AppointmentBooked(window=data.window, slot_start=data.slot_start, slot_end=data.slot_end)
        return await self.control.signal(program, data.application_no, "appointment_booked", fact)

    async def _paper(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        clerk = Actor(id=f"clerk:{_token(data.clerk_id)}", role=Role.WINDOW_CLERK)
        command = RecordPaperReceipt(
            actor=clerk, window_code=data.window_code, received_at=data.received_at,
            copies=data.copies, bound_and_stamped=data.bound_and_stamped, form_id=data.form_id,
        )
        return await self.control.update(program, data.application_no, "record_paper_receipt", command, update_id=event.envelope.id)

    _commands: ClassVar[dict[str, Callable[[Intake, str, ParsedEvent], Awaitable[Outcome]]]] = {
        topics.LONGGANG_APPLICATION_WITHDRAWN: _withdrawal,
        topics.SHENZHEN_APPLICATION_WITHDRAWN: _withdrawal,
        topics.LONGGANG_FORM_DOWNLOADED: _form_downloaded,
        topics.GUANGDONG_SUBMISSION_RECEIVED: _guangdong_submission,
        topics.SHENZHEN_APPOINTMENT_BOOKED: _appointment,
        topics.WINDOW_PAPER_RECEIVED: _paper,
    }


def _derived_id(kind: str, event: ParsedEvent) -> str:
    """The id of an event intake publishes because of `event`: the same on every redelivery."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{event.envelope.id}"))


def _without_people(payload: dict[str, Any]) -> dict[str, Any]:
    """The submission's facts for other services: the applicant's people (legal representative,
    contact) left out altogether, not only their sealed numbers."""
    applicant = {k: v for k, v in payload.get("applicant", {}).items() if k not in PEOPLE}
    return {**payload, "applicant": applicant}


def _portal(event: ParsedEvent) -> Actor:
    """The enterprise's own act, relayed by its portal: `portal:longgang-qyfw`."""
    return Actor(id="portal:" + _token(event.envelope.source.removeprefix("urn:portal:")), role=Role.PORTAL)


def _token(text: str) -> str:
    """An id safe for an Actor (letters, digits, `:._-`), at most 60 characters."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in ":._-") else "-" for ch in text)[:60] or "unknown"


__all__ = ["APPLIED", "Intake", "Outcome"]
