"""Use cases of the intake service: an inbound event is stored once and becomes a workflow start,
a decision (update) or a fact (signal) for its application's lifecycle.

Each event takes two statements and a command, and holds no transaction open while it waits:
1. read what is known (is the event in the inbox? the application's program and latest version);
2. send the workflow command (start, update or signal), unless the event is refused before that;
3. write everything the event leaves behind in ONE statement: the inbox row, the event and its
   outcome (`inbound_events`), an accepted submission's version with its lookups and materials, and
   the events to publish (outbox): the version's facts and contact, or for a refused first
   submission `subsidy.intake.rejected.v1`.
A crash (or a failed write) between 2 and 3 leaves nothing written, so the redelivered event sends
the command again, which is idempotent (see lifecycle_control): nothing is lost and nothing is
applied twice. The offsets are committed only after 3 (handlers).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
import structlog
from pydantic import BaseModel

from services.intake import repository
from services.intake.lifecycle_control import APPLIED, LifecycleControl, Outcome
from subsidy.contracts import topics
from subsidy.contracts.events import PaperReceived, ParsedEvent
from subsidy.contracts.lifecycle import (
    SIGNAL_APPOINTMENT_BOOKED,
    SIGNAL_FORM_DOWNLOADED,
    UPDATE_RECORD_GUANGDONG_SUBMISSION,
    UPDATE_RECORD_PAPER_RECEIPT,
    UPDATE_RESUBMIT,
    UPDATE_WITHDRAW,
    Actor,
    AppointmentBooked,
    FormDownloaded,
    RecordGuangdongSubmission,
    RecordPaperReceipt,
    Resubmit,
    Role,
    Withdraw,
)
from subsidy.contracts.platform_events import ContactRecorded, SubmissionRecorded
from subsidy.crypto import PersonalDataCipher
from subsidy.failpoints import crash_if_armed
from subsidy.log_context import current_correlation_id
from subsidy.outbox import OutboxEvent
from subsidy.programs import Program

CONSUMER = "intake.inbound"
SUBMITTED = {topics.LONGGANG_APPLICATION_SUBMITTED, topics.SHENZHEN_APPLICATION_SUBMITTED}
RESUBMITTED = {topics.LONGGANG_APPLICATION_RESUBMITTED, topics.SHENZHEN_APPLICATION_RESUBMITTED}
PERSONAL_FIELDS = ("id_number", "mobile")  # payload keys holding personal data; also the lookup kinds
PEOPLE = ("legal_representative", "contact")  # applicant keys describing persons
log = structlog.get_logger(__name__)


class StoredMeanwhile(Exception):
    """Another consumer stored this event, or this application's version, between our read and
    our write (only while partitions move between intake processes). Nothing of ours was written;
    transient: the event is handled again and then finds what is stored."""

    retriable = True

    def __init__(self) -> None:
        super().__init__("another consumer stored this event or version meanwhile; handling it again")


@dataclass
class Effect:
    """What an inbound event leaves behind: the command's outcome, the version to store (an
    accepted submission) and the events to publish."""

    outcome: Outcome
    version: repository.Version | None = None
    events: list[OutboxEvent] = dataclasses.field(default_factory=list)


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
        began = time.perf_counter()
        known = await repository.known(
            self.pool, consumer=CONSUMER, source=envelope.source, event_id=envelope.id, application_no=envelope.subject
        )
        if known.processed:
            log.info("event already processed", event_type=envelope.type)
            return None
        commanded = time.perf_counter()
        effect = await self._apply(known, event)
        command_ms = (time.perf_counter() - commanded) * 1000
        outcome = effect.outcome
        if not outcome.applied and envelope.type in SUBMITTED:
            effect.events.append(self._rejection(event, outcome))
        inbound = repository.Inbound(
            event_id=envelope.id, topic=topic, type=envelope.type, source=envelope.source, application_no=envelope.subject,
            event_time=envelope.time, applied=outcome.applied, reason=outcome.reason,
        )
        crash_if_armed("intake.after_command")  # the command sent, nothing written yet
        try:
            await repository.record_effect(self.pool, consumer=CONSUMER, inbound=inbound, version=effect.version, events=effect.events)
        except asyncpg.UniqueViolationError:
            raise StoredMeanwhile() from None
        log.info(
            "event applied" if outcome.applied else "event refused", event_type=envelope.type, reason=outcome.reason,
            handled_ms=round((time.perf_counter() - began) * 1000, 1), command_ms=round(command_ms, 1),
        )
        return outcome

    async def _apply(self, known: repository.Known, event: ParsedEvent) -> Effect:
        kind = event.envelope.type
        if kind in SUBMITTED:
            return await self._first_submission(known, event)
        if kind in RESUBMITTED:
            return await self._resubmission(known, event)
        if known.program is None:
            return Effect(Outcome.refused("unknown_application: no submission of this application was received"))
        handler = self._commands.get(kind)
        if handler is None:
            return Effect(Outcome.refused(f"not_for_intake: {kind} is handled by another service"))
        return Effect(await handler(self, known.program, event))

    # --- submissions -----------------------------------------------------------------------------

    async def _first_submission(self, known: repository.Known, event: ParsedEvent) -> Effect:
        data: Any = event.payload
        program = self.programs[data.program]
        if not program.filing.accepts(data.submitted_at):
            window = program.filing
            return Effect(Outcome.refused(
                f"outside_filing_window: first submissions are accepted from {window.opens_at.isoformat()} "
                f"to {window.closes_at.isoformat()}"  # type: ignore[union-attr]
            ))
        if known.program is not None:  # version 1 exists
            return Effect(Outcome.refused("duplicate_submission: this application was already submitted; send a resubmission"))
        outcome = await self.control.start(
            program, application_no=data.application_no, submitted_at=data.submitted_at, correlation_id=event.envelope.id
        )
        return self._stored_if_applied(outcome, event, version=1)

    async def _resubmission(self, known: repository.Known, event: ParsedEvent) -> Effect:
        data: Any = event.payload
        if not known.latest_version:
            return Effect(Outcome.refused("unknown_application: a resubmission needs a first submission"))
        version = known.latest_version + 1
        outcome = await self.control.update(
            data.program, data.application_no, UPDATE_RESUBMIT,
            Resubmit(actor=_portal(event), version=version, submitted_at=data.submitted_at),
            update_id=event_key(event),
        )
        return self._stored_if_applied(outcome, event, version=version)

    def _stored_if_applied(self, outcome: Outcome, event: ParsedEvent, *, version: int) -> Effect:
        """An accepted submission's effect: the version to store, and its facts (without the people
        in them) for review's pre-checks and its contact for notify, to publish."""
        if not outcome.applied:
            return Effect(outcome)
        data: Any = event.payload
        payload = data.model_dump(mode="json")
        sealed, lookups = self._seal_personal_data(data.application_no, payload)
        stored = repository.Version(
            application_no=data.application_no, version=version, program=data.program, event_id=event.envelope.id,
            submitted_at=data.submitted_at, applicant_uscc=data.applicant.uscc, payload=payload, sealed=sealed,
            lookups=lookups, materials=payload.get("materials", []),
        )
        events = [_derived_event(topics.SUBMISSION_RECORDED, "submission", event, lambda event_id: SubmissionRecorded(
            event_id=event_id,
            program=data.program,
            application_no=data.application_no,
            version=version,
            applicant_uscc=data.applicant.uscc,
            submitted_at=data.submitted_at,
            facts=_without_people(payload),
            recorded_at=event.envelope.time,
        ))]
        if "applicant.contact.mobile" in sealed:  # whom notify texts about this application
            events.append(_derived_event(topics.CONTACT_RECORDED, "contact", event, lambda event_id: ContactRecorded(
                event_id=event_id,
                program=data.program,
                application_no=data.application_no,
                version=version,
                applicant_name=data.applicant.name,
                contact_mobile_sealed=sealed["applicant.contact.mobile"],
                recorded_at=event.envelope.time,
            )))
        return Effect(outcome, stored, events)

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

    def _rejection(self, event: ParsedEvent, outcome: Outcome) -> OutboxEvent:
        """`subsidy.intake.rejected.v1`: a first submission the platform did not accept, and why."""
        data: Any = event.payload
        return _derived_event(topics.INTAKE_REJECTED, "intake-rejected", event, lambda _: {
            "event_id": event.envelope.id,
            "program": data.program,
            "application_no": data.application_no,
            "submitted_at": data.submitted_at.isoformat(),
            "reason": outcome.reason,
        })

    # --- later events: decisions (updates) and facts (signals) ------------------------------------

    async def _withdrawal(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        command = Withdraw(actor=_portal(event), withdrawn_at=data.withdrawn_at, reason=data.reason)
        return await self.control.update(program, data.application_no, UPDATE_WITHDRAW, command, update_id=event_key(event))

    async def _form_downloaded(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        fact = FormDownloaded(form_id=data.form_id, downloaded_at=data.downloaded_at)
        return await self.control.signal(program, data.application_no, SIGNAL_FORM_DOWNLOADED, fact)

    async def _guangdong_submission(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        command = RecordGuangdongSubmission(
            actor=_portal(event), gd_case_no=data.gd_case_no, form_id=data.form_id,
            form_sha256=data.form_sha256, received_at=data.received_at,
        )
        return await self.control.update(program, data.application_no, UPDATE_RECORD_GUANGDONG_SUBMISSION, command, update_id=event_key(event))

    async def _appointment(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        fact = AppointmentBooked(window=data.window, slot_start=data.slot_start, slot_end=data.slot_end)
        return await self.control.signal(program, data.application_no, SIGNAL_APPOINTMENT_BOOKED, fact)

    async def _paper(self, program: str, event: ParsedEvent) -> Outcome:
        data: Any = event.payload
        if not from_its_window(event):  # the webhook refuses these; the topic may carry them too
            return Outcome.refused("source_mismatch: a window records paper received at that window only (data.window_code)")
        clerk = Actor(id=f"clerk:{_token(data.clerk_id)}", role=Role.WINDOW_CLERK)
        command = RecordPaperReceipt(
            actor=clerk, window_code=data.window_code, received_at=data.received_at,
            copies=data.copies, bound_and_stamped=data.bound_and_stamped, form_id=data.form_id,
        )
        return await self.control.update(program, data.application_no, UPDATE_RECORD_PAPER_RECEIPT, command, update_id=event_key(event))

    _commands: ClassVar[dict[str, Callable[[Intake, str, ParsedEvent], Awaitable[Outcome]]]] = {
        topics.LONGGANG_APPLICATION_WITHDRAWN: _withdrawal,
        topics.SHENZHEN_APPLICATION_WITHDRAWN: _withdrawal,
        topics.LONGGANG_FORM_DOWNLOADED: _form_downloaded,
        topics.GUANGDONG_SUBMISSION_RECEIVED: _guangdong_submission,
        topics.SHENZHEN_APPOINTMENT_BOOKED: _appointment,
        topics.WINDOW_PAPER_RECEIVED: _paper,
    }


def _derived_event(
    topic: str, kind: str, event: ParsedEvent, payload: Callable[[str], BaseModel | dict[str, Any]]
) -> OutboxEvent:
    """An event intake publishes because of `event`, keyed by its application, with an id derived
    from `kind` and the inbound event's key (the same on every redelivery); `payload(id)` builds it."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{event_key(event)}"))
    return OutboxEvent(topic=topic, key=event.envelope.subject, event_id=event_id, payload=payload(event_id))


def event_key(event: ParsedEvent) -> str:
    """One inbound event's identity: a CloudEvents id is unique only per `source`, so both make it
    (a uuid5 of them: bounded in length). The update id of its workflow command and the ids of the
    events derived from it; the inbox and `inbound_events` store source and id themselves."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloudevent:{event.envelope.source} {event.envelope.id}"))


def from_its_window(event: ParsedEvent) -> bool:
    """False for paper a window says was received at another window: a clerk records paper
    received at their own window (DESIGN.md), whose events have the source `urn:window:<window
    code>` (CONTRACTS.md). True for every other event."""
    payload = event.payload
    return not isinstance(payload, PaperReceived) or event.envelope.source == f"urn:window:{payload.window_code}"


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
