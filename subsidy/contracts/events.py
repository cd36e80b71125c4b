"""Inbound events (CONTRACTS.md): the CloudEvents envelope, one payload model per type, and
`parse_event`, the single entry point that turns raw Kafka/webhook bytes into a typed event or
an `InvalidEvent` with a reason code fit for a DLQ header.

Unknown fields are kept at every level (the platform may accept more, never less). Money is
integer fen, datetimes carry an offset, and rejection details never contain identifier values.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from subsidy.contracts import topics
from subsidy.contracts.workflow_ids import ApplicationNo
from subsidy.identifiers import USCC, InvalidIdentifierError, Mobile, ResidentId, mask_personal_data
from subsidy.text import unstorable_at

# Programs are data: this is the default set the parser accepts; services pass their loaded set.
KNOWN_PROGRAMS: frozenset[str] = frozenset({"LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"})

Fen = Annotated[StrictInt, Field(ge=0)]
"""An amount of money in fen (0.01 CNY). Floats, strings and booleans are rejected."""
ProgramCode = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")]
# The envelope's subject (the Kafka key): a short, safe alphabet. Where it names an application it
# must equal data.application_no, which is an `ApplicationNo` (the workflow ids' own type).
Subject = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
# Either case is accepted; kept in lower case, as hexdigest() gives it and the workflows compare it.
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]
NonEmpty = Annotated[str, Field(min_length=1)]

MaterialKind = Literal[
    # Longgang guide 四(一)1-8 and 四(二)1-3
    "application_form",
    "business_license",
    "head_office_authorisation",
    "legal_rep_id",
    "project_lead_id",
    "project_lead_labor_contract",
    "project_lead_social_insurance_3m",
    "credit_report",
    "audit_reports_2y",
    "tax_certificate",
    "ethics_materials",
    "model_service_contract",
    "invoices",
    "bank_payment_proofs",
    "tax_receipts",
    "model_usage_report",
    "cac_filing_proof",
    "security_assessment_proof",
]


class _Contract(BaseModel):
    """Base of every contract model: unknown fields kept, inputs never echoed in errors."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)


# --- Envelope ------------------------------------------------------------------------------

SOURCE_PATTERN = (
    r"^(?:urn:portal:(?:longgang-qyfw|gdzwfw|sz-finance)"
    r"|urn:window:[A-Za-z0-9][A-Za-z0-9_-]*"
    r"|urn:sms:[A-Za-z0-9][A-Za-z0-9._-]*)$"
)


class CloudEvent(_Contract):
    """CloudEvents 1.0, structured JSON mode. Extension attributes are kept as extra fields."""

    specversion: Literal["1.0"]
    id: NonEmpty
    source: Annotated[str, Field(pattern=SOURCE_PATTERN)]
    type: NonEmpty
    time: AwareDatetime
    subject: Subject
    datacontenttype: str | None = None
    data: dict[str, Any]


# --- Shared parts --------------------------------------------------------------------------


class Material(_Contract):
    kind: MaterialKind
    file_id: NonEmpty
    sha256: Sha256Hex
    pages: Annotated[StrictInt, Field(ge=1)]


# --- Longgang: LG-AI-MODEL-2025 -------------------------------------------------------------


class LegalRepresentative(_Contract):
    name: NonEmpty
    id_number: ResidentId


class LonggangContact(_Contract):
    name: NonEmpty
    mobile: Mobile
    id_number: ResidentId | None = None


class LonggangApplicant(_Contract):
    name: NonEmpty
    uscc: USCC
    industry_code: NonEmpty
    registered_district: str
    operating_address: str
    is_branch: bool
    head_office_uscc: USCC | None = None
    legal_representative: LegalRepresentative
    contact: LonggangContact
    related_party_usccs: list[USCC] = Field(default_factory=list)


class LonggangDeclarations(_Contract):
    serious_dishonesty_listed: bool
    other_district_funds_for_same_item: bool
    ethics_sensitive: bool


class SecurityAssessment(_Contract):
    level: Annotated[StrictInt, Field(ge=1, le=5)]
    certificate_no: NonEmpty
    assessor_name: str
    assessed_on: date


class Invoice(_Contract):
    invoice_no: NonEmpty
    amount_fen: Fen
    issued_on: date


class Payment(_Contract):
    bank_ref: NonEmpty
    amount_fen: Fen
    paid_on: date


class ModelContract(_Contract):
    """A model-calling service contract. A missing filing is a review finding, not a parse error."""

    contract_no: NonEmpty
    supplier_name: str
    supplier_uscc: USCC
    model_name: str
    cac_filing_no: str | None = None
    security_assessment: SecurityAssessment | None = None
    signed_on: date
    completed_on: date | None = None
    amount_fen: Fen
    invoices: list[Invoice] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)


class LonggangApplicationSubmitted(_Contract):
    program: ProgramCode
    application_no: ApplicationNo
    submitted_at: AwareDatetime
    applicant: LonggangApplicant
    declarations: LonggangDeclarations
    model_contracts: list[ModelContract]
    materials: list[Material]


class LonggangApplicationResubmitted(LonggangApplicationSubmitted):
    """Same shape as the first submission; replaces it."""


# --- Shenzhen: SZ-GOVAI-SCENARIO-2025 -------------------------------------------------------


class ShenzhenContact(_Contract):
    name: NonEmpty
    mobile: Mobile


class ShenzhenApplicant(_Contract):
    name: NonEmpty
    uscc: USCC
    registered_city: str
    district: str
    business_lines: list[str] = Field(default_factory=list)
    contact: ShenzhenContact


class Consortium(_Contract):
    is_consortium: bool
    # The contract does not define a member's shape yet; members are kept as sent.
    members: list[dict[str, Any]] = Field(default_factory=list)


class ScenarioProduct(_Contract):
    name: NonEmpty
    scenario_id: NonEmpty
    scenario_published_on: date
    in_use_since: date
    government_funded: bool
    test_report_file_ids: list[str] = Field(default_factory=list)
    user_report_file_ids: list[str] = Field(default_factory=list)


class ShenzhenDeclarations(_Contract):
    other_municipal_support_for_same_product: bool


class ShenzhenApplicationSubmitted(_Contract):
    program: ProgramCode
    application_no: ApplicationNo
    submitted_at: AwareDatetime
    applicant: ShenzhenApplicant
    consortium: Consortium
    product: ScenarioProduct
    declarations: ShenzhenDeclarations
    materials: list[Material]


class ShenzhenApplicationResubmitted(ShenzhenApplicationSubmitted):
    """Same shape as the first submission; replaces it."""


# --- Other events --------------------------------------------------------------------------


class ApplicationWithdrawn(_Contract):
    program: ProgramCode
    application_no: ApplicationNo
    withdrawn_at: AwareDatetime
    reason: str | None = None


class FormDownloaded(_Contract):
    application_no: ApplicationNo
    form_id: NonEmpty
    downloaded_at: AwareDatetime


class GuangdongSubmissionReceived(_Contract):
    application_no: ApplicationNo
    gd_case_no: NonEmpty
    form_id: NonEmpty
    form_sha256: Sha256Hex
    received_at: AwareDatetime


class AppointmentBooked(_Contract):
    application_no: ApplicationNo
    window: NonEmpty
    slot_start: AwareDatetime
    slot_end: AwareDatetime

    @model_validator(mode="after")
    def _slot_ends_after_start(self) -> AppointmentBooked:
        if self.slot_end <= self.slot_start:
            raise ValueError("slot_end must be after slot_start")
        return self


class PaperReceived(_Contract):
    application_no: ApplicationNo
    window_code: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]*$")]
    received_at: AwareDatetime
    copies: Annotated[StrictInt, Field(ge=1)]
    bound_and_stamped: bool
    form_id: NonEmpty
    clerk_id: NonEmpty


class SmsDeliveryReported(_Contract):
    message_id: NonEmpty
    provider: NonEmpty
    mobile: Mobile
    status: Literal["DELIVERED", "FAILED"]
    error_code: str | None = None
    reported_at: AwareDatetime


Payload = (
    LonggangApplicationSubmitted
    | ShenzhenApplicationSubmitted
    | ApplicationWithdrawn
    | FormDownloaded
    | GuangdongSubmissionReceived
    | AppointmentBooked
    | PaperReceived
    | SmsDeliveryReported
)

PAYLOAD_MODELS: dict[str, type[Payload]] = {
    topics.LONGGANG_APPLICATION_SUBMITTED: LonggangApplicationSubmitted,
    topics.LONGGANG_APPLICATION_RESUBMITTED: LonggangApplicationResubmitted,
    topics.LONGGANG_APPLICATION_WITHDRAWN: ApplicationWithdrawn,
    topics.LONGGANG_FORM_DOWNLOADED: FormDownloaded,
    topics.GUANGDONG_SUBMISSION_RECEIVED: GuangdongSubmissionReceived,
    topics.SHENZHEN_APPLICATION_SUBMITTED: ShenzhenApplicationSubmitted,
    topics.SHENZHEN_APPLICATION_RESUBMITTED: ShenzhenApplicationResubmitted,
    topics.SHENZHEN_APPLICATION_WITHDRAWN: ApplicationWithdrawn,
    topics.SHENZHEN_APPOINTMENT_BOOKED: AppointmentBooked,
    topics.WINDOW_PAPER_RECEIVED: PaperReceived,
    topics.SMS_DELIVERY_REPORTED: SmsDeliveryReported,
}


# --- Parsing -------------------------------------------------------------------------------

ReasonCode = Literal[
    "not_json",
    "bad_envelope",
    "unknown_type",
    "unknown_program",
    "program_mismatch",  # a program of another lifecycle than its portal's (subsidy/programs/inbound.py)
    "invalid_identifier",
    "invalid_payload",
    "subject_mismatch",
]


class InvalidEvent(Exception):
    """Input that breaks the contract. `detail` is short English without identifier values."""

    def __init__(self, reason_code: ReasonCode, detail: str) -> None:
        super().__init__(f"{reason_code}: {detail}")
        self.reason_code: ReasonCode = reason_code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A valid inbound event: the envelope and its typed payload."""

    topic: str
    envelope: CloudEvent
    payload: Payload

    @property
    def event_id(self) -> str:
        return self.envelope.id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def application_no(self) -> str:
        return self.envelope.subject


_MAX_ERRORS_IN_DETAIL = 5
_MAX_DETAIL = 500


def _describe(errors: list[ErrorDetails], prefix: str = "") -> str:
    """'loc: type' per error; identifier errors carry their own value-free message."""
    parts = []
    for err in errors[:_MAX_ERRORS_IN_DETAIL]:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "") or "(root)"
        cause = _identifier_error(err)
        parts.append(f"{loc}: {cause}" if cause else f"{loc}: {err['type']}")
    if len(errors) > _MAX_ERRORS_IN_DETAIL:
        parts.append(f"(+{len(errors) - _MAX_ERRORS_IN_DETAIL} more)")
    return _safe("; ".join(parts))


def _identifier_error(err: ErrorDetails) -> str | None:
    cause = (err.get("ctx") or {}).get("error")
    return str(cause) if isinstance(cause, InvalidIdentifierError) else None


def _safe(text: str) -> str:
    """Belt and braces: nothing that looks like an ID or mobile number leaves in a detail."""
    return mask_personal_data(text)[:_MAX_DETAIL]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# The deepest nesting of objects and arrays an inbound event may have; the envelope is level 1. The
# contract's deepest value is level 6 (an invoice: envelope, data, model_contracts, a contract,
# invoices, an invoice), and unknown fields (a consortium member's) are kept as sent: 64 leaves
# them room. Deeper JSON is refused before anything touches it: Python's parser gives up with a
# RecursionError from about a thousand levels, and recursive steps after it from fewer (a payload's
# model_dump from 256, after intake had started the workflow; the DLQ's masking).
MAX_JSON_DEPTH = 64
TOO_DEEP = f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)"
UNSTORABLE = "text holds NUL (\\u0000) or an unpaired surrogate"


def load_json(raw: bytes | str) -> Any:
    """`raw` decoded, or `InvalidEvent("not_json")`: not JSON, NaN or Infinity, or nested more
    than MAX_JSON_DEPTH levels deep (the webhook and every Kafka subscriber refuse it alike); or
    `InvalidEvent("invalid_payload")`: a string or key holding `\\u0000` or an unpaired surrogate
    escape (`\\ud800`), valid JSON that no PostgreSQL text or jsonb can hold and UTF-8 cannot
    encode (subsidy/text.py): refused before a workflow starts, not failing at intake's first write."""
    try:
        decoded = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidEvent("not_json", TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent("not_json", f"not valid JSON ({type(exc).__name__})") from None
    if _nested_deeper_than(decoded, MAX_JSON_DEPTH):
        raise InvalidEvent("not_json", TOO_DEEP)
    if (where := unstorable_at(decoded)) is not None:
        raise InvalidEvent("invalid_payload", _safe(f"{where}: {UNSTORABLE}"))
    return decoded


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` has objects or arrays more than `limit` levels deep; level by level, without
    recursion, so that it cannot fail on what it is meant to refuse."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [
            child for node in level for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return bool(level)


def parse_event(
    topic: str, raw: bytes | str, *, known_programs: Collection[str] = KNOWN_PROGRAMS
) -> ParsedEvent:
    """Decode and validate one inbound event received on `topic`.

    Checks, in order: JSON (nested at most MAX_JSON_DEPTH levels), envelope, type allowed on the
    topic, program known (before the payload, so an unknown program is reported as such even if its
    payload differs), payload, subject == data.application_no. Raises `InvalidEvent` on the first failing check.
    Raises `KeyError` for a topic that has no inbound contract (a wiring error, not bad input).
    """
    allowed_types = topics.EVENT_TYPES_BY_TOPIC[topic]
    decoded = load_json(raw)
    if not isinstance(decoded, dict):
        raise InvalidEvent("bad_envelope", "event is not a JSON object")
    try:
        envelope = CloudEvent.model_validate(decoded)
    except ValidationError as exc:
        raise InvalidEvent("bad_envelope", _describe(exc.errors(include_input=False))) from None

    if envelope.type not in allowed_types:
        detail = f"type {envelope.type[:100]!r} not allowed on {topic}"
        raise InvalidEvent("unknown_type", _safe(detail))
    model = PAYLOAD_MODELS[envelope.type]

    program = envelope.data.get("program")
    has_program = "program" in model.model_fields
    if has_program and isinstance(program, str) and program not in known_programs:
        raise InvalidEvent("unknown_program", _safe(f"program {program[:64]!r} is not known"))

    try:
        payload = model.model_validate(envelope.data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False)
        reason: ReasonCode = (
            "invalid_identifier" if all(_identifier_error(e) for e in errors) else "invalid_payload"
        )
        raise InvalidEvent(reason, _describe(errors, prefix="data")) from None

    application_no = getattr(payload, "application_no", None)
    if application_no is not None and application_no != envelope.subject:
        raise InvalidEvent("subject_mismatch", "subject does not match data.application_no")
    return ParsedEvent(topic=topic, envelope=envelope, payload=payload)
