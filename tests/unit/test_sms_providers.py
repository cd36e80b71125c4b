"""The SMS provider adapters through their official SDKs, over real HTTP on loopback, against fake
Alibaba Cloud and Tencent Cloud servers that record and count what they receive
(tests/support/fake_sms_providers.py); failover and reconciliation; the local provider's receipts;
the settings. No Kafka, no database."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from services.notify.providers.aliyun import AliyunSmsProvider
from services.notify.providers.failover import (
    ReconcileInconclusive,
    SmsProviderUnavailable,
    reconcile,
    send_with_failover,
)
from services.notify.providers.local import LocalSmsProvider
from services.notify.providers.port import SendResult, SentRecord, SmsProvider, SmsRequest
from services.notify.providers.settings import SmsProviderConfigError, SmsProviderSettings, build_providers
from services.notify.providers.tencent import TencentSmsProvider
from subsidy.contracts import topics
from subsidy.contracts.events import SmsDeliveryReported, parse_event
from subsidy.identifiers import mask_mobile
from subsidy.logging import configure_logging
from tests.fixtures.events import SMS_MOBILE
from tests.support.fake_sms_providers import FakeAliyun, FakeTencent

SDK_APP_ID = "1400006666"
ALIYUN_SECRET = "aliyun-secret-value-0123456789"
TENCENT_SECRET = "tencent-secret-value-0123456789"


@pytest.fixture
def fake_aliyun() -> Iterator[FakeAliyun]:
    with FakeAliyun() as fake:
        yield fake


@pytest.fixture
def fake_tencent() -> Iterator[FakeTencent]:
    with FakeTencent() as fake:
        yield fake


@pytest.fixture
def aliyun(fake_aliyun: FakeAliyun) -> AliyunSmsProvider:
    return AliyunSmsProvider(
        access_key_id="LTAI-test", access_key_secret=ALIYUN_SECRET, endpoint=fake_aliyun.endpoint,
        protocol="http", timeout_s=5,
    )


def tencent_provider(fake: FakeTencent, *, report_grace_s: float = 300) -> TencentSmsProvider:
    return TencentSmsProvider(
        secret_id="AKID-test", secret_key=TENCENT_SECRET, sdk_app_id=SDK_APP_ID, endpoint=fake.endpoint,
        scheme="http", timeout_s=5, report_grace_s=report_grace_s,
    )


@pytest.fixture
def tencent(fake_tencent: FakeTencent) -> TencentSmsProvider:
    return tencent_provider(fake_tencent)


def sms(template_code: str = "SMS_476530012", **overrides: object) -> SmsRequest:
    fields: dict[str, object] = {
        "message_id": str(uuid.uuid4()),
        "mobile": SMS_MOBILE,
        "sign_name": "龙岗区人工智能署",
        "template_code": template_code,
        "params": {"application_no": "LG2025-000123", "deadline": "2025-12-19"},
        "text": "【龙岗区人工智能署】您的申报LG2025-000123已通过线上终审，请于2025-12-19前提交纸质材料。",
    }
    fields.update(overrides)
    return SmsRequest(**fields)  # type: ignore[arg-type]


def now() -> datetime:
    return datetime.now(UTC)


# --- sending ------------------------------------------------------------------------------------


async def test_aliyun_send_reaches_the_api_with_template_params_and_out_id(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun
) -> None:
    request = sms()
    result = await aliyun.send(request)

    assert result.accepted and result.provider == "aliyun" and not result.error_code
    assert fake_aliyun.send_requests == 1
    [message] = fake_aliyun.messages
    assert result.provider_message_id == message.biz_id
    assert message.phone == SMS_MOBILE
    assert message.sign_name == "龙岗区人工智能署"
    assert message.template_code == "SMS_476530012"
    assert message.params == {"application_no": "LG2025-000123", "deadline": "2025-12-19"}
    assert message.out_id == request.message_id


async def test_tencent_send_reaches_the_api_with_template_params_in_order_and_session_context(
    tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    request = sms(template_code="2046811", params={"b": "第一个", "a": "second"})
    result = await tencent.send(request)

    assert result.accepted and result.provider == "tencent"
    assert fake_tencent.send_requests == 1
    [message] = fake_tencent.messages
    assert result.provider_message_id == message.serial_no
    assert message.phone == "+86" + SMS_MOBILE
    assert message.sdk_app_id == SDK_APP_ID
    assert message.sign_name == "龙岗区人工智能署"
    assert message.template_id == "2046811"
    assert message.params == ["第一个", "second"]  # the dict's order: the template's
    assert message.session_context == request.message_id


# --- error mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "retryable"),
    [
        ("throttling", "Throttling.User", True),
        ("throttling_retry_after", "Throttling.User", True),
        ("business_limit", "isv.BUSINESS_LIMIT_CONTROL", True),
        ("server_error", "ServiceUnavailable", True),
        ("system_error", "isp.SYSTEM_ERROR", True),
        ("disconnect", None, True),
        ("invalid_number", "isv.MOBILE_NUMBER_ILLEGAL", False),
    ],
)
async def test_aliyun_errors_map_to_retryable_or_definitive(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, kind: str, code: str | None, retryable: bool
) -> None:
    fake_aliyun.fail_next(1, kind)
    result = await aliyun.send(sms())
    assert not result.accepted
    assert result.retryable is retryable
    if code is None:
        assert result.error_code and result.error_code.startswith("NetworkError")
    else:
        assert result.error_code == code
    assert fake_aliyun.send_requests == 1 and fake_aliyun.messages == []

    assert (await aliyun.send(sms())).accepted  # the switch is spent: the next one goes through


async def test_aliyun_unreachable_is_retryable() -> None:
    with FakeAliyun() as fake:
        endpoint = fake.endpoint
    provider = AliyunSmsProvider(access_key_id="k", access_key_secret="s", endpoint=endpoint, protocol="http")
    result = await provider.send(sms())
    assert not result.accepted and result.retryable
    assert result.error_code and result.error_code.startswith("NetworkError")


@pytest.mark.parametrize(
    ("kind", "code", "retryable"),
    [
        ("throttling", "RequestLimitExceeded", True),
        ("number_limit", "LimitExceeded.PhoneNumberDailyLimit", True),
        ("server_error", "ServerNetworkError", True),
        ("internal_error", "InternalError.OtherError", True),
        ("disconnect", "ClientNetworkError", True),
        ("invalid_number", "InvalidParameterValue.IncorrectPhoneNumber", False),
    ],
)
async def test_tencent_errors_map_to_retryable_or_definitive(
    tencent: TencentSmsProvider, fake_tencent: FakeTencent, kind: str, code: str, retryable: bool
) -> None:
    fake_tencent.fail_next(1, kind)
    result = await tencent.send(sms())
    assert (result.accepted, result.error_code, result.retryable) == (False, code, retryable)
    assert fake_tencent.send_requests == 1 and fake_tencent.messages == []

    assert (await tencent.send(sms())).accepted


async def test_unknown_error_codes_are_worth_failing_over(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    fake_aliyun.fail_next(1, code="isv.SOMETHING_NEW", status=200)
    fake_tencent.fail_next(1, code="FailedOperation.SomethingNew", status=200)
    assert (await aliyun.send(sms())).retryable
    assert (await tencent.send(sms())).retryable


# --- find ----------------------------------------------------------------------------------------


async def test_aliyun_find_by_out_id_reports_sending_delivered_failed(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun
) -> None:
    sent_at = now()
    other = sms()
    request = sms()
    await aliyun.send(other)  # another message to the same number, the same day
    await aliyun.send(request)

    record = await aliyun.find(request.message_id, mobile=request.mobile, sent_at=sent_at)
    assert record.found and record.status == "SENDING" and record.reported_at is None

    fake_aliyun.mark(request.message_id, "DELIVERED")
    record = await aliyun.find(request.message_id, mobile=request.mobile, sent_at=sent_at)
    assert record.found and record.status == "DELIVERED"
    assert record.reported_at is not None and record.reported_at.tzinfo is not None
    assert abs(record.reported_at - now()) < timedelta(minutes=1)

    fake_aliyun.mark(other.message_id, "FAILED", err_code="MK:0001")
    record = await aliyun.find(other.message_id, mobile=other.mobile, sent_at=sent_at)
    assert record.found and record.status == "FAILED" and record.error_code == "MK:0001"

    assert fake_aliyun.query_requests >= 3
    assert fake_aliyun.send_requests == 2  # finding never sends


async def test_aliyun_find_pages_through_the_days_messages(aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun) -> None:
    sent_at = now()
    requests = [sms() for _ in range(53)]
    await asyncio.gather(*(aliyun.send(r) for r in requests))
    assert len(fake_aliyun.messages) == 53
    last = fake_aliyun.messages[-1].out_id
    assert last is not None
    record = await aliyun.find(last, mobile=SMS_MOBILE, sent_at=sent_at)
    assert record.found and record.status == "SENDING"


async def test_aliyun_find_unknown_message_is_not_found(aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun) -> None:
    await aliyun.send(sms())
    record = await aliyun.find(str(uuid.uuid4()), mobile=SMS_MOBILE, sent_at=now())
    assert record == SentRecord(found=False)
    assert fake_aliyun.query_requests >= 1


async def test_aliyun_find_when_the_provider_cannot_answer_raises(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun
) -> None:
    fake_aliyun.fail_next(1, "server_error", action="QuerySendDetails")
    with pytest.raises(SmsProviderUnavailable) as raised:
        await aliyun.find(str(uuid.uuid4()), mobile=SMS_MOBILE, sent_at=now())
    assert raised.value.provider == "aliyun" and raised.value.error_code == "ServiceUnavailable"


async def test_tencent_find_by_session_context_reports_delivered_and_failed(
    tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    sent_at = now()
    request, other = sms(template_code="2046811"), sms(template_code="2046811")
    await tencent.send(request)
    await tencent.send(other)

    # Not reported on yet: Tencent does not list it, and shortly after sending that proves nothing.
    record = await tencent.find(request.message_id, mobile=request.mobile, sent_at=sent_at)
    assert not record.found and record.extra.get("conclusive") == "false"

    fake_tencent.mark(request.message_id, "DELIVERED")
    record = await tencent.find(request.message_id, mobile=request.mobile, sent_at=sent_at)
    assert record.found and record.status == "DELIVERED"
    assert record.provider_message_id == fake_tencent.by_session_context(request.message_id).serial_no
    assert record.reported_at is not None and record.reported_at.tzinfo is not None

    fake_tencent.mark(other.message_id, "FAILED", description="MN:0001")
    record = await tencent.find(other.message_id, mobile=other.mobile, sent_at=sent_at)
    assert record.found and record.status == "FAILED" and record.error_code == "MN:0001"

    assert fake_tencent.query_requests == 3 and fake_tencent.send_requests == 2


async def test_tencent_find_unknown_message_after_the_grace_is_not_found(fake_tencent: FakeTencent) -> None:
    provider = tencent_provider(fake_tencent, report_grace_s=0)
    await provider.send(sms())
    fake_tencent.mark(fake_tencent.messages[0].session_context or "", "DELIVERED")
    record = await provider.find(str(uuid.uuid4()), mobile=SMS_MOBILE, sent_at=now() - timedelta(seconds=1))
    assert record == SentRecord(found=False)


async def test_tencent_find_when_the_provider_cannot_answer_raises(
    tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    fake_tencent.fail_next(1, "throttling", action="PullSmsSendStatusByPhoneNumber")
    with pytest.raises(SmsProviderUnavailable) as raised:
        await tencent.find(str(uuid.uuid4()), mobile=SMS_MOBILE, sent_at=now())
    assert raised.value.error_code == "RequestLimitExceeded"


# --- failover ------------------------------------------------------------------------------------


async def test_failover_primary_throttled_fallback_accepts(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    fake_aliyun.fail_next(1, "throttling")
    request = sms()
    result = await send_with_failover(
        [aliyun, tencent], request, template_codes={"aliyun": "SMS_476530012", "tencent": "2046811"}
    )
    assert result.accepted and result.provider == "tencent"
    assert fake_aliyun.send_requests == 1 and fake_aliyun.messages == []
    assert fake_tencent.send_requests == 1
    [message] = fake_tencent.messages
    assert message.session_context == request.message_id and message.template_id == "2046811"


async def test_failover_tencent_primary_internal_error_falls_back_to_aliyun(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    fake_tencent.fail_next(1, "internal_error")  # an answer of the API: it did not take the message
    result = await send_with_failover([tencent, aliyun], sms())
    assert result.accepted and result.provider == "aliyun"
    assert (fake_tencent.send_requests, fake_aliyun.send_requests) == (1, 1)


@pytest.mark.parametrize("primary", ["aliyun", "tencent"])
async def test_no_failover_when_the_primary_accepted_but_its_reply_was_lost(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent,
    primary: str,
) -> None:
    """Issue 14, defect 2: the primary has the message, its answer never arrived. Failing over
    would make both providers deliver it."""
    providers = [aliyun, tencent] if primary == "aliyun" else [tencent, aliyun]
    fakes = {"aliyun": fake_aliyun, "tencent": fake_tencent}
    fakes[primary].fail_next(1, "lost_reply")
    result = await send_with_failover(providers, sms())
    assert not result.accepted and result.outcome_unknown and result.provider == primary
    assert len(fakes[primary].messages) == 1  # the provider has it ...
    other = "tencent" if primary == "aliyun" else "aliyun"
    assert fakes[other].send_requests == 0  # ... so nobody else is asked to send it


@pytest.mark.parametrize("kind", ["server_error", "disconnect"])
async def test_tencent_without_an_answer_is_an_unknown_outcome(
    tencent: TencentSmsProvider, fake_tencent: FakeTencent, kind: str
) -> None:
    fake_tencent.fail_next(1, kind)
    assert (await tencent.send(sms())).outcome_unknown


async def test_aliyun_dropped_connection_is_an_unknown_outcome_but_its_api_errors_are_answers(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun
) -> None:
    fake_aliyun.fail_next(1, "disconnect")
    assert (await aliyun.send(sms())).outcome_unknown
    for kind in ("throttling", "server_error", "system_error", "business_limit"):
        fake_aliyun.fail_next(1, kind)
        result = await aliyun.send(sms())
        assert result.retryable and not result.outcome_unknown, kind


async def test_a_provider_that_cannot_be_connected_to_is_not_an_unknown_outcome() -> None:
    with FakeAliyun() as fake:
        endpoint = fake.endpoint  # closed again: nothing listens there
    aliyun = AliyunSmsProvider(access_key_id="k", access_key_secret="s", endpoint=endpoint, protocol="http")
    tencent = TencentSmsProvider(secret_id="i", secret_key="k", sdk_app_id=SDK_APP_ID, endpoint=endpoint, scheme="http")
    for provider in (aliyun, tencent):
        result = await provider.send(sms())
        assert result.retryable and not result.outcome_unknown, provider.name


async def test_before_send_is_asked_before_each_provider_and_can_stop_the_send(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    seen: list[tuple[str, str | None]] = []

    async def before_send(provider: str, previous: SendResult | None) -> None:
        seen.append((provider, previous.error_code if previous else None))
        if provider == "tencent":
            raise RuntimeError("lease lost")

    fake_aliyun.fail_next(1, "throttling")
    with pytest.raises(RuntimeError):
        await send_with_failover([aliyun, tencent], sms(), before_send=before_send)
    assert seen == [("aliyun", None), ("tencent", "Throttling.User")]
    assert fake_tencent.send_requests == 0


async def test_no_failover_when_the_primary_is_not_needed(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    result = await send_with_failover([aliyun, tencent], sms())
    assert result.accepted and result.provider == "aliyun"
    assert (fake_aliyun.send_requests, fake_tencent.send_requests) == (1, 0)


async def test_no_failover_on_a_definitive_rejection_of_the_number(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    fake_aliyun.fail_next(1, "invalid_number")
    result = await send_with_failover([aliyun, tencent], sms())
    assert not result.accepted and not result.retryable
    assert (result.provider, result.error_code) == ("aliyun", "isv.MOBILE_NUMBER_ILLEGAL")
    assert fake_tencent.send_requests == 0


async def test_every_provider_failing_returns_a_retryable_result(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    fake_aliyun.fail_next(1, "server_error")
    fake_tencent.fail_next(1, "throttling")
    result = await send_with_failover([aliyun, tencent], sms())
    assert not result.accepted and result.retryable
    assert (result.provider, result.error_code) == ("tencent", "RequestLimitExceeded")
    assert (fake_aliyun.send_requests, fake_tencent.send_requests) == (1, 1)


@dataclass
class Exploding:
    name: str = "exploding"
    calls: int = 0

    async def send(self, request: SmsRequest) -> SendResult:
        self.calls += 1
        raise RuntimeError("adapter bug")

    async def find(self, message_id: str, *, mobile: str, sent_at: datetime) -> SentRecord:
        raise RuntimeError("adapter bug")


async def test_an_adapter_exception_is_an_unknown_outcome_not_a_failover(
    tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    exploding = Exploding()  # the request may have gone out before the adapter failed
    result = await send_with_failover([exploding, tencent], sms())
    assert not result.accepted and result.outcome_unknown and result.retryable
    assert result.provider == "exploding" and exploding.calls == 1 and fake_tencent.send_requests == 0


async def test_failover_needs_a_provider() -> None:
    with pytest.raises(ValueError):
        await send_with_failover([], sms())


# --- reconcile -----------------------------------------------------------------------------------


async def test_reconcile_finds_the_message_where_it_was_sent(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, fake_tencent: FakeTencent
) -> None:
    tencent = tencent_provider(fake_tencent)
    fake_aliyun.fail_next(1, "server_error")
    sent_at = now()
    request = sms()
    assert (await send_with_failover([aliyun, tencent], request)).provider == "tencent"
    fake_tencent.mark(request.message_id, "DELIVERED")

    found = await reconcile([aliyun, tencent], request.message_id, request.mobile, sent_at)
    assert found is not None
    name, record = found
    assert name == "tencent" and record.status == "DELIVERED"
    assert fake_aliyun.messages == [] and fake_tencent.send_requests == 1  # nothing sent again


async def test_reconcile_of_an_unsent_message_is_none(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, fake_tencent: FakeTencent
) -> None:
    tencent = tencent_provider(fake_tencent, report_grace_s=0)
    sent_at = now() - timedelta(seconds=1)
    assert await reconcile([aliyun, tencent], str(uuid.uuid4()), SMS_MOBILE, sent_at) is None
    assert fake_aliyun.query_requests >= 1 and fake_tencent.query_requests == 1


async def test_reconcile_is_inconclusive_when_a_provider_cannot_tell(
    aliyun: AliyunSmsProvider, fake_aliyun: FakeAliyun, tencent: TencentSmsProvider, fake_tencent: FakeTencent
) -> None:
    # Tencent within its grace: an unreported message would not be listed yet.
    with pytest.raises(ReconcileInconclusive) as raised:
        await reconcile([aliyun, tencent], str(uuid.uuid4()), SMS_MOBILE, now())
    assert set(raised.value.reasons) == {"tencent"}

    # Alibaba unreachable for the query.
    fake_aliyun.fail_next(1, "disconnect", action="QuerySendDetails")
    quick_tencent = tencent_provider(fake_tencent, report_grace_s=0)
    with pytest.raises(ReconcileInconclusive) as raised:
        await reconcile([aliyun, quick_tencent], str(uuid.uuid4()), SMS_MOBILE, now() - timedelta(seconds=1))
    assert set(raised.value.reasons) == {"aliyun"}
    assert fake_aliyun.send_requests == 0 and fake_tencent.send_requests == 0


# --- the local provider --------------------------------------------------------------------------


@dataclass
class LocalWorld:
    recorded: dict[str, tuple[SmsRequest, datetime]] = field(default_factory=dict)
    published: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def record(self, request: SmsRequest) -> None:
        self.recorded[request.message_id] = (request, now())

    async def publish(self, topic: str, key: str, body: bytes) -> None:
        self.published.append((topic, key, body))

    async def lookup(self, message_id: str) -> datetime | None:
        entry = self.recorded.get(message_id)
        return entry[1] if entry else None


async def test_local_provider_records_and_reports_delivery_on_sms_receipts() -> None:
    world = LocalWorld()
    local = LocalSmsProvider(world.record, world.publish, world.lookup, delay_s=0.01)
    request = sms()
    sent_at = now()

    result = await local.send(request)
    assert result.accepted and result.provider == "local"
    assert world.recorded[request.message_id][0] == request
    assert (await local.find(request.message_id, mobile=request.mobile, sent_at=sent_at)).status == "SENDING"

    await local.drain()
    [(topic, key, body)] = world.published
    assert topic == topics.SMS_RECEIPTS == "sms.receipts.v1"
    assert key == request.message_id
    event = parse_event(topics.SMS_RECEIPTS, body)
    assert event.type == topics.SMS_DELIVERY_REPORTED
    assert event.envelope.source == "urn:sms:local"
    assert event.envelope.time.tzinfo is not None
    payload = event.payload
    assert isinstance(payload, SmsDeliveryReported)
    assert payload.message_id == request.message_id
    assert payload.provider == "local" and payload.status == "DELIVERED" and payload.error_code is None
    assert payload.mobile == SMS_MOBILE  # receipts carry the number (CONTRACTS.md)
    assert abs(payload.reported_at - now()) < timedelta(minutes=1)

    record = await local.find(request.message_id, mobile=request.mobile, sent_at=sent_at)
    assert record.found and record.status == "DELIVERED"
    assert (await local.find(str(uuid.uuid4()), mobile=SMS_MOBILE, sent_at=sent_at)) == SentRecord(found=False)

    await local.send(second := sms())
    await local.drain()
    ids = {json.loads(b)["id"] for _, _, b in world.published}
    assert len(ids) == 2 and world.published[1][1] == second.message_id  # a fresh event id each


async def test_local_provider_reports_a_message_recorded_before_a_crash() -> None:
    world = LocalWorld()
    request = sms()
    await world.record(request)  # recorded by an earlier process, which stopped before its receipt
    local = LocalSmsProvider(world.record, world.publish, world.lookup, delay_s=0.01)

    record = await local.find(request.message_id, mobile=request.mobile, sent_at=now())
    assert record.found and record.status == "SENDING"
    await local.drain()
    [(_, key, body)] = world.published
    assert key == request.message_id
    assert parse_event(topics.SMS_RECEIPTS, body).payload.message_id == request.message_id  # type: ignore[union-attr]
    assert world.recorded.keys() == {request.message_id}  # found, not sent again


async def test_local_provider_keeps_trying_to_publish_and_can_be_closed() -> None:
    world = LocalWorld()
    failures = 2

    async def flaky_publish(topic: str, key: str, body: bytes) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("broker down")
        await world.publish(topic, key, body)

    local = LocalSmsProvider(world.record, flaky_publish, world.lookup, delay_s=0)
    import services.notify.providers.local as local_module

    original = local_module._PUBLISH_BACKOFF_S
    local_module._PUBLISH_BACKOFF_S = 0.001
    try:
        await local.send(sms())
        await local.drain()
    finally:
        local_module._PUBLISH_BACKOFF_S = original
    assert len(world.published) == 1

    slow = LocalSmsProvider(world.record, world.publish, world.lookup, delay_s=60)
    await slow.send(sms())
    await slow.aclose()
    assert len(world.published) == 1


# --- logs ----------------------------------------------------------------------------------------


async def test_no_full_mobile_number_or_secret_in_the_logs(
    aliyun: AliyunSmsProvider,
    fake_aliyun: FakeAliyun,
    tencent: TencentSmsProvider,
    fake_tencent: FakeTencent,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The run's one logging configuration (tests/conftest.py), whatever earlier tests left behind.
    configure_logging("tests", level="INFO", fmt="json")
    caplog.set_level(logging.INFO)
    world = LocalWorld()
    local = LocalSmsProvider(world.record, world.publish, world.lookup, delay_s=0)
    fake_aliyun.fail_next(1, "throttling")
    fake_tencent.fail_next(1, "invalid_number")
    request = sms()

    await send_with_failover([aliyun, tencent], request)  # throttled, then refused
    await send_with_failover([aliyun, tencent], sms())  # accepted
    await aliyun.find(request.message_id, mobile=request.mobile, sent_at=now())
    await tencent.find(request.message_id, mobile=request.mobile, sent_at=now())
    await local.send(sms())
    await local.drain()

    # At the source: our own log calls already mask (they do not rely on the rendering processor).
    ours = [r for r in caplog.records if r.name.startswith("services.notify.providers")]
    assert len(ours) >= 6
    raw = "\n".join(str(r.msg) for r in ours)
    assert mask_mobile(SMS_MOBILE) in raw and "template_code" in raw and "message_id" in raw
    # And as rendered on stderr by the one logging configuration.
    rendered = capsys.readouterr().err
    assert mask_mobile(SMS_MOBILE) in rendered
    for text in (raw, rendered):
        assert SMS_MOBILE not in text
        assert "+86" + SMS_MOBILE not in text
        assert ALIYUN_SECRET not in text and TENCENT_SECRET not in text


# --- settings ------------------------------------------------------------------------------------

_SMS_ENV = (
    "SMS_PROVIDERS",
    "SMS_REQUEST_TIMEOUT_SECONDS",
    "ALIYUN_SMS_ACCESS_KEY_ID",
    "ALIYUN_SMS_ACCESS_KEY_SECRET",
    "ALIYUN_SMS_ENDPOINT",
    "ALIYUN_SMS_PROTOCOL",
    "TENCENT_SMS_SECRET_ID",
    "TENCENT_SMS_SECRET_KEY",
    "TENCENT_SMS_SDK_APP_ID",
    "TENCENT_SMS_REGION",
    "TENCENT_SMS_ENDPOINT",
    "TENCENT_SMS_SCHEME",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _SMS_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_sms_providers_local_needs_nothing_else(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SMS_PROVIDERS", "local")
    world = LocalWorld()
    local = LocalSmsProvider(world.record, world.publish, world.lookup)
    assert build_providers(SmsProviderSettings(), local=local) == [local]
    with pytest.raises(SmsProviderConfigError, match="local"):
        build_providers(SmsProviderSettings())


def test_real_providers_without_credentials_are_refused_by_name(clean_env: pytest.MonkeyPatch) -> None:
    settings = SmsProviderSettings()
    assert settings.provider_names == ("aliyun", "tencent")
    with pytest.raises(SmsProviderConfigError) as raised:
        build_providers(settings)
    for name in ("ALIYUN_SMS_ACCESS_KEY_ID", "ALIYUN_SMS_ACCESS_KEY_SECRET", "TENCENT_SMS_SECRET_ID",
                 "TENCENT_SMS_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID"):
        assert name in str(raised.value)


async def test_settings_build_working_providers_in_order(
    clean_env: pytest.MonkeyPatch, fake_aliyun: FakeAliyun, fake_tencent: FakeTencent
) -> None:
    env = {
        "SMS_PROVIDERS": "Tencent, aliyun",
        "ALIYUN_SMS_ACCESS_KEY_ID": "LTAI-test",
        "ALIYUN_SMS_ACCESS_KEY_SECRET": ALIYUN_SECRET,
        "ALIYUN_SMS_ENDPOINT": fake_aliyun.endpoint,
        "ALIYUN_SMS_PROTOCOL": "http",
        "TENCENT_SMS_SECRET_ID": "AKID-test",
        "TENCENT_SMS_SECRET_KEY": TENCENT_SECRET,
        "TENCENT_SMS_SDK_APP_ID": SDK_APP_ID,
        "TENCENT_SMS_ENDPOINT": fake_tencent.endpoint,
        "TENCENT_SMS_SCHEME": "http",
    }
    for key, value in env.items():
        clean_env.setenv(key, value)
    settings = SmsProviderSettings()
    assert ALIYUN_SECRET not in repr(settings) and TENCENT_SECRET not in repr(settings)
    providers: list[SmsProvider] = build_providers(settings)
    assert [p.name for p in providers] == ["tencent", "aliyun"]
    assert all(ALIYUN_SECRET not in repr(p) and TENCENT_SECRET not in repr(p) for p in providers)

    fake_tencent.fail_next(1, "throttling")
    result = await send_with_failover(providers, sms())
    assert result.accepted and result.provider == "aliyun"
    assert (fake_tencent.send_requests, fake_aliyun.send_requests) == (1, 1)


@pytest.mark.parametrize("value", ["", "aliyun,sms-king", "aliyun,aliyun", "local,aliyun"])
def test_sms_providers_must_name_known_providers_once(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("SMS_PROVIDERS", value)
    with pytest.raises(ValueError):
        SmsProviderSettings()
