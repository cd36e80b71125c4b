"""The signed webhook, its FastAPI router driven as an ASGI app (no server): signature, timestamp
window, contract validation with the same reason codes as the DLQ, the topic of each type, and
clean logs."""

from __future__ import annotations

import asyncio

import json
from dataclasses import dataclass, field
from pathlib import Path
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI

from deploy.embedded.dev_keys import DEV_WEBHOOK_SLUGS, dev_webhook_keys
from services.intake import webhook
from services.intake.settings import IntakeSettings
from services.intake.webhook import WebhookReceiver, sign, source_of_slug
from subsidy.contracts import topics
from subsidy.crypto import generate_dev_keys
from subsidy.programs import Program, load_programs
from subsidy.logging import configure_logging
from tests.fixtures import events

NOW = datetime(2025, 12, 9, 2, 31, 30, tzinfo=UTC)
KEYS = {
    "longgang-qyfw": "longgang-secret-0123456789",
    "gdzwfw": "gdzwfw-secret-0123456789",
    "sz-finance": "sz-finance-secret-0123456789",
    "window-LG-W03": "window-lg-w03-secret-0123456789",
    "sms-aliyun": "sms-aliyun-secret-0123456789",
}
RAW_IDENTIFIERS = (events.LEGAL_REP_ID, events.CONTACT_ID, events.CONTACT_MOBILE, events.SMS_MOBILE)


def settings(**overrides: Any) -> IntakeSettings:
    keys = {name.lower(): value for name, value in generate_dev_keys().items()}
    return IntakeSettings(**keys, **{"webhook_keys": KEYS, **overrides})


@dataclass
class FakeKafka:
    fail: bool = False
    published: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail:
            raise ConnectionError("no broker")
        self.published.append((topic, key, value))


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.raw.decode("utf-8"))


async def call(
    app: FastAPI,
    body: bytes,
    *,
    slug: str = "longgang-qyfw",
    method: str = "POST",
    path: str | None = None,
    signature: str | None = None,
    timestamp: str | None = None,
    content_type: str = "application/cloudevents+json",
    chunk: int | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    headers = {
        "content-type": content_type,
        "x-signature": signature if signature is not None else sign(KEYS.get(slug, "x" * 16), body),
        "x-timestamp": timestamp if timestamp is not None else str(int(NOW.timestamp())),
        **(extra_headers or {}),
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path if path is not None else f"/webhooks/{slug}",
        "raw_path": b"",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if v],
        "client": ("192.0.2.10", 50000),
        "server": ("127.0.0.1", 8000),
    }
    size = chunk or max(len(body), 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body_message = sent
    assert start["type"] == "http.response.start" and body_message["type"] == "http.response.body"
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert response_headers["content-type"] == "application/json; charset=utf-8"
    return Response(start["status"], response_headers, body_message["body"])


def make_app(kafka: FakeKafka, *, programs: dict[str, Program] | None = None, **overrides: Any) -> FastAPI:
    """The webhook's router in an app of its own, with the receiver the intake service builds
    (`programs`: the configured ones, by default those of subsidy/programs/)."""
    app = FastAPI()
    app.include_router(webhook.router())
    configured = {} if programs is None else {"programs": programs}
    receiver = WebhookReceiver(settings(**overrides), kafka.publish, clock=lambda: NOW, **configured)
    app.state.resources = SimpleNamespace(extras={webhook.EXTRA: receiver})
    return app


def slug_of(source: str) -> str:
    kind, _, name = source.removeprefix("urn:").partition(":")
    return name if kind == "portal" else f"{kind}-{name}"


@pytest.fixture
def kafka() -> FakeKafka:
    return FakeKafka()


@pytest.fixture
def app(kafka: FakeKafka) -> FastAPI:
    return make_app(kafka)


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(events.EXAMPLES))
async def test_every_contract_example_is_accepted_and_published_as_sent(
    kafka: FakeKafka, app: FastAPI, event_type: str
) -> None:
    topic, event = events.example_event(event_type)
    body = events.encode(event)
    response = await call(app, body, slug=slug_of(event["source"]))
    assert response.status == 202, response.json
    assert response.json == {"accepted": event["id"], "topic": topic}
    assert kafka.published == [(topic, event["subject"].encode(), body)]


async def test_plain_json_content_type_chunked_body_and_upper_case_hex_are_accepted(
    kafka: FakeKafka, app: FastAPI
) -> None:
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    body = events.encode(event)
    signature = "sha256=" + sign(KEYS["longgang-qyfw"], body).removeprefix("sha256=").upper()
    response = await call(
        app, body, content_type="application/json; charset=UTF-8", chunk=100, signature=signature
    )
    assert response.status == 202, response.json
    assert kafka.published[0][2] == body


async def test_a_timestamp_inside_the_window_is_accepted(kafka: FakeKafka, app: FastAPI) -> None:
    _, event = events.example_event(topics.LONGGANG_FORM_DOWNLOADED)
    for skew in (-299, 299):
        response = await call(app, events.encode(event), timestamp=str(int(NOW.timestamp()) + skew))
        assert response.status == 202, (skew, response.json)


# --- 401 -------------------------------------------------------------------------------------


def longgang_body() -> bytes:
    return events.encode(events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)[1])


@pytest.mark.parametrize(
    "signature",
    [
        sign("a-wrong-secret-0123456789", longgang_body()),
        sign(KEYS["gdzwfw"], longgang_body()),  # another source's key
        sign(KEYS["longgang-qyfw"], longgang_body() + b" "),  # another body
        "sha1=" + sign(KEYS["longgang-qyfw"], longgang_body()).removeprefix("sha256="),
        "sha256=not-hex",
        "",
    ],
    ids=["wrong-key", "other-source-key", "other-body", "other-algorithm", "not-hex", "missing"],
)
async def test_a_wrong_signature_gets_401(kafka: FakeKafka, app: FastAPI, signature: str) -> None:
    response = await call(app, longgang_body(), signature=signature)
    assert response.status == 401
    assert response.json == {"reason": "bad_signature"}
    assert "www-authenticate" in response.headers
    assert kafka.published == []


@pytest.mark.parametrize("age", [timedelta(minutes=10), timedelta(minutes=-10), timedelta(seconds=301)])
async def test_an_old_or_future_timestamp_gets_401(kafka: FakeKafka, app: FastAPI, age: timedelta) -> None:
    response = await call(app, longgang_body(), timestamp=str(int((NOW - age).timestamp())))
    assert response.status == 401
    assert response.json["reason"] == "stale_timestamp"
    assert kafka.published == []


@pytest.mark.parametrize("timestamp", ["", "yesterday", "1765247490.5", "-1", "1765247490123456"])
async def test_a_missing_or_malformed_timestamp_gets_401(kafka: FakeKafka, app: FastAPI, timestamp: str) -> None:
    response = await call(app, longgang_body(), timestamp=timestamp)
    assert response.status == 401
    assert response.json["reason"] == "bad_timestamp"
    assert kafka.published == []


# --- 404, 405, 413, 415 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/unknown-portal",
        "/webhooks/window-LG-W99",  # a valid slug without a key: no webhook for it
        "/webhooks/sms-tencent",
        "/webhooks/",
        "/webhooks/longgang-qyfw/extra",
        "/webhooks/urn:portal:longgang-qyfw",
    ],
)
async def test_an_unknown_or_unconfigured_source_gets_404(kafka: FakeKafka, app: FastAPI, path: str) -> None:
    response = await call(app, longgang_body(), path=path)
    assert response.status == 404
    assert response.json == {"reason": "unknown_source"}
    assert kafka.published == []


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
async def test_other_methods_get_405(kafka: FakeKafka, app: FastAPI, method: str) -> None:
    response = await call(app, b"", method=method)
    assert response.status == 405
    assert response.headers["allow"] == "POST"


async def test_a_body_over_the_limit_gets_413(kafka: FakeKafka) -> None:
    app = make_app(kafka, webhook_max_body_bytes=1024)
    body = longgang_body()
    assert len(body) > 1024
    declared = await call(app, body, extra_headers={"content-length": str(len(body))})
    streamed = await call(app, body, chunk=512)  # no content-length: counted while reading
    assert declared.status == streamed.status == 413
    assert declared.json["reason"] == streamed.json["reason"] == "too_large"
    assert kafka.published == []


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/xml", "application/json; charset=gbk"])
async def test_another_content_type_gets_415(kafka: FakeKafka, app: FastAPI, content_type: str) -> None:
    response = await call(app, longgang_body(), content_type=content_type)
    assert response.status == 415
    assert response.json["reason"] == "unsupported_media_type"


# --- 400: the contract's reasons ------------------------------------------------------------


async def test_not_json_gets_400_not_json(kafka: FakeKafka, app: FastAPI) -> None:
    for body in (b"{not json", b"\xff\xfe", b"[" * 100_000):
        response = await call(app, body)
        assert response.status == 400
        assert response.json["reason"] == "not_json", response.json
    assert kafka.published == []


async def test_an_event_nested_deeper_than_kafka_takes_gets_400_not_json_as_on_kafka(kafka: FakeKafka, app: FastAPI) -> None:
    """The same bound and reason as a Kafka subscriber's (parse_event): a webhook that took an event
    nested 300 deep would publish what intake then dead-letters."""
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    event["data"]["portal_extra"] = "NESTED"
    for levels in (70, 300, 100_000):
        body = events.encode(event).replace(b'"NESTED"', b"[" * levels + b"]" * levels)
        response = await call(app, body)
        assert (response.status, response.json) == (400, {"reason": "not_json", "detail": "JSON nested too deeply (more than 64 levels)"}), levels
    assert kafka.published == []


async def test_nul_or_a_lone_surrogate_escape_gets_400_invalid_payload_as_on_kafka(kafka: FakeKafka, app: FastAPI) -> None:
    """Valid JSON that no row can hold: refused before anything is published (parse_event)."""
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    event["data"]["applicant"]["name"] = "UNSTORABLE"
    for escape in (b"\\u0000", b"\\ud800"):
        response = await call(app, events.encode(event).replace(b'"UNSTORABLE"', b'"x' + escape + b'"'))
        assert (response.status, response.json["reason"]) == (400, "invalid_payload"), escape
        assert "data.applicant.name" in response.json["detail"]
    assert kafka.published == []


async def test_an_invalid_uscc_gets_400_and_the_answer_holds_no_identifier(kafka: FakeKafka, app: FastAPI) -> None:
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    bad_uscc = events.APPLICANT_USCC[:-1] + ("X" if events.APPLICANT_USCC[-1] != "X" else "Y")
    event["data"]["applicant"]["uscc"] = bad_uscc
    response = await call(app, events.encode(event))
    assert response.status == 400
    assert response.json["reason"] == "invalid_identifier"
    assert "applicant.uscc" in response.json["detail"]
    for raw in (bad_uscc, *RAW_IDENTIFIERS):
        assert raw not in response.raw.decode()
    assert kafka.published == []


async def test_an_invalid_id_number_gets_400_and_is_not_echoed(kafka: FakeKafka, app: FastAPI) -> None:
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    bad_id = events.LEGAL_REP_ID[:-1] + ("0" if events.LEGAL_REP_ID[-1] != "0" else "1")
    event["data"]["applicant"]["legal_representative"]["id_number"] = bad_id
    response = await call(app, events.encode(event))
    assert response.status == 400
    assert response.json["reason"] == "invalid_identifier"
    assert bad_id not in response.raw.decode() and bad_id[:17] not in response.raw.decode()


async def test_bad_envelope_unknown_type_and_unknown_program_get_their_reasons(
    kafka: FakeKafka, app: FastAPI
) -> None:
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    cases = {
        "bad_envelope": {**event, "specversion": "0.3"},
        "unknown_type": {**event, "type": "cn.gov.longgang.application.approved"},
        "unknown_program": {**event, "data": {**event["data"], "program": "LG-UNKNOWN-2025"}},
        "subject_mismatch": {**event, "subject": "LG2025-999999"},
    }
    for reason, bad in cases.items():
        response = await call(app, events.encode(bad))
        assert response.status == 400, reason
        assert response.json["reason"] == reason, response.json
        assert response.json["detail"]
    assert kafka.published == []


async def test_an_application_number_no_workflow_id_could_take_gets_400_invalid_payload(
    kafka: FakeKafka, app: FastAPI
) -> None:
    """Issue 14, defect 7: `LG-3e157e` used to get 202, then failed five times at the workflow id."""
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    bad = {**event, "subject": "LG-3e157e", "data": {**event["data"], "application_no": "LG-3e157e"}}
    response = await call(app, events.encode(bad))
    assert response.status == 400
    assert response.json["reason"] == "invalid_payload", response.json
    assert "application_no" in response.json["detail"]
    assert kafka.published == []


async def test_an_envelope_from_another_source_gets_400_source_mismatch(kafka: FakeKafka, app: FastAPI) -> None:
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    other_portal = {**event, "source": "urn:portal:gdzwfw"}
    response = await call(app, events.encode(other_portal), slug="longgang-qyfw")
    assert (response.status, response.json["reason"]) == (400, "source_mismatch")

    # a window's key cannot file an application, even naming itself as the source
    as_window = {**event, "source": "urn:window:LG-W03"}
    response = await call(app, events.encode(as_window), slug="window-LG-W03")
    assert (response.status, response.json["reason"]) == (400, "source_mismatch")

    # nor can one window speak for another
    _, paper = events.example_event(topics.WINDOW_PAPER_RECEIVED)
    response = await call(app, events.encode({**paper, "source": "urn:window:LG-W04"}), slug="window-LG-W03")
    assert (response.status, response.json["reason"]) == (400, "source_mismatch")
    assert kafka.published == []


async def test_a_window_key_cannot_record_paper_at_another_window(kafka: FakeKafka, app: FastAPI) -> None:
    """A clerk records paper at their own window (DESIGN.md): the window named in the event is the
    window whose key signed it, not only the envelope's source."""
    _, paper = events.example_event(topics.WINDOW_PAPER_RECEIVED)
    paper["data"]["window_code"] = "LG-W07"
    response = await call(app, events.encode(paper), slug="window-LG-W03")
    assert (response.status, response.json["reason"]) == (400, "source_mismatch")
    assert "window_code" in response.json["detail"]
    assert kafka.published == []


@pytest.mark.parametrize(
    ("event_type", "program"),
    [
        (topics.SHENZHEN_APPLICATION_SUBMITTED, "LG-AI-MODEL-2025"),
        (topics.SHENZHEN_APPLICATION_RESUBMITTED, "LG-AI-MODEL-2025"),
        (topics.SHENZHEN_APPLICATION_WITHDRAWN, "LG-AI-MODEL-2025"),
        (topics.LONGGANG_APPLICATION_SUBMITTED, "SZ-GOVAI-SCENARIO-2025"),
        (topics.LONGGANG_APPLICATION_WITHDRAWN, "SZ-GOVAI-SCENARIO-2025"),
    ],
)
async def test_a_portal_cannot_name_a_program_of_another_lifecycle(
    kafka: FakeKafka, app: FastAPI, event_type: str, program: str
) -> None:
    """A Shenzhen portal's submission naming the Longgang program would start a Longgang lifecycle."""
    _, event = events.example_event(event_type)
    event["data"]["program"] = program
    response = await call(app, events.encode(event), slug=slug_of(event["source"]))
    assert (response.status, response.json["reason"]) == (400, "program_mismatch")
    assert program in response.json["detail"]
    assert kafka.published == []


async def test_a_program_configured_as_data_is_accepted(kafka: FakeKafka) -> None:
    """Programs are data (subsidy/programs/*.toml): the webhook accepts what the service is
    configured with, as the Kafka consumer does, not a list of its own."""
    configured = load_programs()
    configured["LG-AI-MODEL-2026"] = configured["LG-AI-MODEL-2025"].model_copy(update={"code": "LG-AI-MODEL-2026"})
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    event["data"]["program"] = "LG-AI-MODEL-2026"
    response = await call(make_app(kafka, programs=configured), events.encode(event))
    assert response.status == 202, response.json
    assert len(kafka.published) == 1


async def test_by_default_the_webhook_reads_the_configured_programs(
    kafka: FakeKafka, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from subsidy.programs import PROGRAMS_DIR, programs

    for toml in PROGRAMS_DIR.glob("*.toml"):
        (tmp_path / toml.name).write_text(toml.read_text("utf-8"), "utf-8")
    lg = (PROGRAMS_DIR / "LG-AI-MODEL-2025.toml").read_text("utf-8")
    (tmp_path / "LG-AI-MODEL-2026.toml").write_text(
        lg.replace('code = "LG-AI-MODEL-2025"', 'code = "LG-AI-MODEL-2026"'), "utf-8")
    monkeypatch.setenv("SUBSIDY_PROGRAMS_DIR", str(tmp_path))
    programs.cache_clear()
    try:
        _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
        event["data"]["program"] = "LG-AI-MODEL-2026"
        response = await call(make_app(kafka), events.encode(event))
    finally:
        programs.cache_clear()
    assert response.status == 202, response.json


# --- 503 -------------------------------------------------------------------------------------


async def test_a_publish_failure_gets_503_so_the_sender_retries() -> None:
    kafka = FakeKafka(fail=True)
    response = await call(make_app(kafka), longgang_body())
    assert response.status == 503
    assert response.json == {"reason": "unavailable"}
    assert response.headers.get("retry-after")


class HangingKafka(FakeKafka):
    """A producer waiting for a broker that is away: the publish does not return."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        await asyncio.Event().wait()


async def test_a_broker_that_does_not_take_the_event_in_time_gets_503_not_a_request_held_open() -> None:
    # Found by tests/faults (Kafka stopped for a minute): the request was held until the broker
    # came back, instead of the 503 with Retry-After that tells the sender to come back.
    response = await asyncio.wait_for(call(make_app(HangingKafka(), webhook_publish_timeout_seconds=0.2), longgang_body()), 10)
    assert response.status == 503
    assert response.json == {"reason": "unavailable"}
    assert response.headers.get("retry-after") == "5"


# --- logs, configuration --------------------------------------------------------------------


async def test_logs_name_source_type_and_reason_never_the_body_or_identifiers(
    kafka: FakeKafka, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("intake", level="INFO", fmt="json")  # as the service does (other tests reset it)
    capsys.readouterr()
    _, event = events.example_event(topics.LONGGANG_APPLICATION_SUBMITTED)
    await call(app, events.encode(event))
    await call(app, events.encode(event), signature="sha256=00")
    bad = {**event, "data": {**event["data"], "applicant": {**event["data"]["applicant"], "uscc": "not-a-uscc"}}}
    await call(app, events.encode(bad))
    _, sms = events.example_event(topics.SMS_DELIVERY_REPORTED)
    await call(app, events.encode(sms), slug="sms-aliyun")
    await call(make_app(FakeKafka(fail=True)), events.encode(event))

    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    webhook = [line for line in lines if line.get("logger") == "subsidy.intake.webhook"]
    assert [line["event"] for line in webhook] == [
        "webhook event accepted",
        "webhook request rejected",
        "webhook request rejected",
        "webhook event accepted",
        "webhook publish failed",
        "webhook event not accepted",
    ]
    assert webhook[0]["source"] == "longgang-qyfw" and webhook[0]["type"] == event["type"]
    assert webhook[1]["reason"] == "bad_signature" and webhook[2]["reason"] == "invalid_identifier"
    for raw in (*RAW_IDENTIFIERS, "深圳市示例智能科技有限公司", "not-a-uscc", *KEYS.values()):
        assert raw not in err


def test_a_misspelt_slug_in_webhook_keys_stops_the_service() -> None:
    with pytest.raises(ValueError, match="not a source slug") as info:
        WebhookReceiver(settings(webhook_keys={"urn:portal:gdzwfw": "a-long-enough-secret"}), FakeKafka().publish)
    assert "a-long-enough-secret" not in str(info.value)


def test_slugs_name_their_sources_and_topics() -> None:
    window = source_of_slug("window-SZ-CIVIC-CENTER-WEST")
    assert window is not None and (window.urn, window.topic) == ("urn:window:SZ-CIVIC-CENTER-WEST", topics.WINDOWS_PAPER)
    sms = source_of_slug("sms-aliyun")
    assert sms is not None and (sms.urn, sms.topic) == ("urn:sms:aliyun", topics.SMS_RECEIPTS)
    for bad in ("window-", "sms-", "longgang", "portal-gdzwfw", "window-LG W03"):
        assert source_of_slug(bad) is None
    keys = dev_webhook_keys()
    assert set(keys) == set(DEV_WEBHOOK_SLUGS) and all(source_of_slug(s) for s in keys)
    assert len(set(keys.values())) == len(keys)
