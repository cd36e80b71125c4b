"""The signed HTTPS webhook: inbound events (CONTRACTS.md) over HTTP, put on the same Kafka topic.

A FastAPI router of the intake service (`router()`), open to the senders (no bearer token: the
HMAC signature of the raw body is their authentication). One POST per event:

    POST /webhooks/<source slug>
    Content-Type: application/cloudevents+json        (or application/json)
    X-Timestamp:  1765247460                            (unix seconds, when the request was sent)
    X-Signature:  sha256=<hex HMAC-SHA256 of the raw body with the source's key>

Source slugs and their keys. Every source has its own key, looked up by the exact slug in
`WEBHOOK_KEYS` (a JSON object slug -> secret; the HMAC key is the secret's UTF-8 bytes):

| slug | envelope `source` | topic |
|---|---|---|
| `longgang-qyfw` | `urn:portal:longgang-qyfw` | portal.longgang.applications.v1 |
| `gdzwfw` | `urn:portal:gdzwfw` | portal.guangdong.submissions.v1 |
| `sz-finance` | `urn:portal:sz-finance` | portal.shenzhen.applications.v1 |
| `window-<code>`, e.g. `window-LG-W03` | `urn:window:<code>` | windows.paper.v1 |
| `sms-<provider>`, e.g. `sms-aliyun` | `urn:sms:<provider>` | sms.receipts.v1 |

So each service window and each SMS provider has a key of its own (`window-LG-W03`,
`sms-aliyun`): a leaked key lets its holder speak only as that one source, never as a portal
or another window. There is no shared fallback key. A slug without a key in `WEBHOOK_KEYS` is
answered 404, like a malformed one: the endpoint does not exist for it.

Checks, in order, each answered with JSON `{"reason": ..., ["detail": ...]}`:

1. the path names a configured source, else 404 `unknown_source`; POST, else 405;
2. body at most `WEBHOOK_MAX_BODY_BYTES`, else 413 `too_large`;
3. `X-Signature` matches (constant-time compare), else 401 `bad_signature`;
4. `X-Timestamp` present and within `WEBHOOK_MAX_SKEW_SECONDS` of now, else 401
   `bad_timestamp` (missing, not an integer) or `stale_timestamp`;
5. content type, else 415 `unsupported_media_type`;
6. `parse_inbound` on the topic of the envelope's type, with the configured programs (the
   same as intake's Kafka consumer): its reason code and value-free detail, 400 (`not_json`,
   JSON nested more than 64 levels deep included as on Kafka, `bad_envelope`, `unknown_type`,
   `unknown_program`, `program_mismatch` (a program of another lifecycle than the portal's),
   `invalid_identifier`, ...);
7. the envelope's `source` is the slug's, and its type is one this source sends (its topic), and
   a window's paper receipt names that window (`data.window_code`: a clerk records paper received
   at their own window), else 400 `source_mismatch`;
8. published (Kafka key = application number, value = the raw body as received), 202
   `{"accepted": <event id>, "topic": ...}`; if Kafka does not take it within
   WEBHOOK_PUBLISH_TIMEOUT_SECONDS (10 s), 503 `unavailable` with `Retry-After: 5`, and the sender retries.

Replays. The contract signs the raw body only (CONTRACTS.md), so `X-Timestamp` is not covered
by the signature: it rejects stale requests from honest senders and naive replays, but whoever
captured a request can resend its body with a fresh header. What makes a replay harmless is the
platform's event-id deduplication: a re-sent event id (the same body) has no second effect, just
like a portal's redelivery on Kafka. Binding the timestamp into the signature would be a
contract change (a new, versioned scheme), not an edit of this file.

Nothing here logs or answers with the body; rejection details come from `InvalidEvent`, which
never contains identifier values.
"""

from __future__ import annotations

import asyncio

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from subsidy.contracts import topics
from services.intake.service import from_its_window
from subsidy.contracts.events import InvalidEvent
from subsidy.logging import get_logger
from subsidy.programs import Program, programs as configured_programs
from subsidy.programs.inbound import parse_inbound
from subsidy.web import resources_of

if TYPE_CHECKING:
    from services.intake.settings import IntakeSettings

__all__ = [
    "PREFIX",
    "WebhookReceiver",
    "WebhookSource",
    "router",
    "sign",
    "source_of_slug",
]

PREFIX = "/webhooks/"
EXTRA = "webhook"  # the receiver's key in the service's `resources.extras`
SIGNATURE_HEADER = "x-signature"
TIMESTAMP_HEADER = "x-timestamp"
MEDIA_TYPES = frozenset({"application/cloudevents+json", "application/json"})

Publish = Callable[[str, bytes, bytes], Awaitable[None]]
Clock = Callable[[], datetime]

_PORTAL_TOPICS = {
    "longgang-qyfw": topics.PORTAL_LONGGANG_APPLICATIONS,
    "gdzwfw": topics.PORTAL_GUANGDONG_SUBMISSIONS,
    "sz-finance": topics.PORTAL_SHENZHEN_APPLICATIONS,
}
# The same alphabets as the envelope's SOURCE_PATTERN (subsidy/contracts/events.py).
_SLUG = re.compile(
    r"(?P<portal>longgang-qyfw|gdzwfw|sz-finance)"
    r"|window-(?P<window>[A-Za-z0-9][A-Za-z0-9_-]*)"
    r"|sms-(?P<sms>[A-Za-z0-9][A-Za-z0-9._-]*)"
)
_TOPIC_BY_TYPE = {t: topic for topic, types in topics.EVENT_TYPES_BY_TOPIC.items() for t in types}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

log = get_logger("subsidy.intake.webhook")


@dataclass(frozen=True, slots=True)
class WebhookSource:
    """A sender: its path slug, the envelope `source` it must use, the topic its events go to."""

    slug: str
    urn: str
    topic: str


def source_of_slug(slug: str) -> WebhookSource | None:
    """The source a path slug names, or None if it names none."""
    m = _SLUG.fullmatch(slug)
    if m is None:
        return None
    if m["portal"]:
        return WebhookSource(slug, f"urn:portal:{m['portal']}", _PORTAL_TOPICS[m["portal"]])
    if m["window"]:
        return WebhookSource(slug, f"urn:window:{m['window']}", topics.WINDOWS_PAPER)
    return WebhookSource(slug, f"urn:sms:{m['sms']}", topics.SMS_RECEIPTS)


def sign(key: str, body: bytes) -> str:
    """The `X-Signature` value for `body` under `key` (what senders compute)."""
    return "sha256=" + hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    log_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        return self.body.get("reason")


def _reject(status: int, reason: str, detail: str | None = None, **headers: str) -> _Answer:
    body = {"reason": reason} if detail is None else {"reason": reason, "detail": detail}
    return _Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class WebhookReceiver:
    """The webhook's checks and publishing, per request; see the module docstring for the protocol.
    Built once at start (a misspelt slug in WEBHOOK_KEYS stops the service)."""

    def __init__(
        self, settings: IntakeSettings, publish: Publish, clock: Clock = _utc_now, *,
        programs: Mapping[str, Program] | None = None,
    ) -> None:
        self._keys: dict[str, bytes] = {}
        for slug, secret in settings.webhook_keys.items():
            if source_of_slug(slug) is None:
                raise ValueError(f"WEBHOOK_KEYS: {slug[:80]!r} is not a source slug (see services/intake/webhook.py)")
            self._keys[slug] = secret.get_secret_value().encode("utf-8")
        self._max_skew = settings.webhook_max_skew_seconds
        self._max_body = settings.webhook_max_body_bytes
        self._publish = publish
        self._publish_timeout = settings.webhook_publish_timeout_seconds
        self._clock = clock
        self._programs = configured_programs() if programs is None else programs  # programs are data

    def knows(self, slug: str) -> bool:
        return source_of_slug(slug) is not None and slug in self._keys

    async def answer(self, request: Request, slug: str) -> Response:
        try:
            answer = await self._handle(request, slug)
        except _Disconnected:
            log.info("webhook client disconnected", source=slug[:80])
            return Response(status_code=400)  # nobody reads it
        _log_answer(answer, slug, request)
        return _json(answer)

    async def _handle(self, request: Request, slug: str) -> _Answer:
        source = source_of_slug(slug)
        key = self._keys.get(slug)
        if source is None or key is None:
            return _reject(404, "unknown_source")
        if request.method != "POST":
            return _reject(405, "method_not_allowed", allow="POST")
        headers = request.headers

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            return _reject(413, "too_large", f"at most {self._max_body} bytes")
        try:
            body = await _read_body(request.stream(), self._max_body)
        except _TooLarge:
            return _reject(413, "too_large", f"at most {self._max_body} bytes")

        if not _signature_matches(key, body, headers.get(SIGNATURE_HEADER)):
            return _reject(401, "bad_signature", www_authenticate="HMAC-SHA256")
        timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
        if not _TIMESTAMP.fullmatch(timestamp):
            return _reject(401, "bad_timestamp", "X-Timestamp must be unix seconds", www_authenticate="HMAC-SHA256")
        if abs(self._clock().timestamp() - int(timestamp)) > self._max_skew:
            return _reject(401, "stale_timestamp", f"more than {self._max_skew}s from now", www_authenticate="HMAC-SHA256")
        if not _media_type_ok(headers.get("content-type", "")):
            return _reject(415, "unsupported_media_type", "application/cloudevents+json or application/json, UTF-8")

        topic = _TOPIC_BY_TYPE.get(_peek_type(body) or "", source.topic)
        try:
            event = parse_inbound(topic, body, self._programs)
        except InvalidEvent as exc:  # JSON nested too deeply included: not_json, as on Kafka
            return _reject(400, exc.reason_code, exc.detail)
        fields = {"type": event.type, "event_id": event.event_id, "application_no": event.application_no}
        if event.envelope.source != source.urn:
            answer = _reject(400, "source_mismatch", "envelope source is not the source this webhook belongs to")
            return _Answer(answer.status, answer.body, log_fields=fields)
        if topic != source.topic:
            answer = _reject(400, "source_mismatch", f"this source does not send {event.type[:100]}")
            return _Answer(answer.status, answer.body, log_fields=fields)
        if not from_its_window(event):
            answer = _reject(400, "source_mismatch", "data.window_code is not the window this source is")
            return _Answer(answer.status, answer.body, log_fields=fields)

        try:
            # Bounded: with the broker away the producer would hold the sender's request until it
            # is back (a minute and more); the sender is told to come back instead. A publish that
            # times out may still land later: the sender's retry has the same event id, which
            # intake's inbox deduplicates (issue 14, faults: Kafka stopped under load).
            await asyncio.wait_for(self._publish(topic, event.application_no.encode("utf-8"), body), self._publish_timeout)
        except Exception as exc:
            log.warning("webhook publish failed", source=slug, topic=topic, error=type(exc).__name__, exc_info=True)
            answer = _reject(503, "unavailable", None, retry_after="5")
            return _Answer(answer.status, answer.body, answer.headers, fields)
        return _Answer(202, {"accepted": event.event_id, "topic": topic}, log_fields={**fields, "topic": topic})


# --- HTTP plumbing -------------------------------------------------------------------------


def router() -> APIRouter:
    """`POST /webhooks/{source}`, and answers in the webhook's own terms for everything else under
    `/webhooks/` (404 `unknown_source`, 405 for another method on a configured source)."""
    api = APIRouter(tags=["webhooks"])

    @api.post(
        "/webhooks/{source}",
        status_code=202,
        summary="An inbound event from a portal, a window or an SMS provider (HMAC-signed raw body)",
        responses={
            400: {"description": "not an acceptable event (`reason` as in the dead-letter records)"},
            401: {"description": "bad_signature, bad_timestamp or stale_timestamp"},
            404: {"description": "unknown_source"},
            413: {"description": "too_large"},
            415: {"description": "unsupported_media_type"},
            503: {"description": "unavailable: Kafka did not take it; retry"},
        },
    )
    async def receive_event(source: str, request: Request) -> Response:
        return await _receiver(request).answer(request, source)

    @api.api_route(
        "/webhooks/{rest:path}",
        methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "POST", "OPTIONS"],
        include_in_schema=False,
    )
    async def anything_else(rest: str, request: Request) -> Response:
        receiver = _receiver(request)
        answer = _reject(405, "method_not_allowed", allow="POST") if receiver.knows(rest) else _reject(404, "unknown_source")
        _log_answer(answer, rest, request)
        return _json(answer)

    return api


def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = resources_of(request).extras[EXTRA]  # 503 while the service starts
    return receiver


def _json(answer: _Answer) -> Response:
    payload = json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
    return Response(payload, answer.status, headers=answer.headers, media_type="application/json; charset=utf-8")


async def _read_body(stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The raw body, as sent (what the signature covers), refusing more than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Disconnected from None
    return b"".join(chunks)

def _signature_matches(key: bytes, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, hex_digest = header.strip().partition("=")
    if scheme.strip().lower() != "sha256":
        return False
    try:
        given = bytes.fromhex(hex_digest.strip())
    except ValueError:
        return False
    return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), given)


def _media_type_ok(content_type: str) -> bool:
    media_type, *params = (part.strip().lower() for part in content_type.split(";"))
    if media_type not in MEDIA_TYPES:
        return False
    charsets = [p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")]
    return all(c in ("utf-8", "utf8") for c in charsets)


def _peek_type(body: bytes) -> str | None:
    """The envelope's `type`, to pick the topic; parse_event reports any problem properly."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    event_type = decoded.get("type") if isinstance(decoded, dict) else None
    return event_type if isinstance(event_type, str) else None


def _log_answer(answer: _Answer, slug: str, request: Request) -> None:
    client = request.client
    fields = {
        "source": slug[:80] or request.url.path[:80],
        "status": answer.status,
        "client": client.host if client else None,
        **answer.log_fields,
    }
    if answer.status == 202:
        log.info("webhook event accepted", **fields)
    elif answer.status >= 500:
        log.warning("webhook event not accepted", reason=answer.reason, **fields)
    else:
        log.warning("webhook request rejected", reason=answer.reason, detail=answer.body.get("detail"), **fields)
