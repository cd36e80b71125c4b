"""Quiet hours hold for every send of a notice, not only the first: a resend after a failed delivery
(carriers often report one hours late), a provider error's backoff, a rate limit's postponement, a
message whose sender's lease ran out in the night. Exempt kinds keep going out at once. The
notifier and the sender over a stand-in for the database (the SQL is tested in
tests/integration/test_notify.py); the templates and quiet hours are the real ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.notify import repository
from services.notify.notices import QuietHours, Templates, load_templates
from services.notify.providers.port import SendResult, SentRecord, SmsRequest
from services.notify.sender import Claim, SmsSender
from services.notify.service import Notifier

SH = ZoneInfo("Asia/Shanghai")
LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"
NIGHT = datetime(2025, 12, 10, 23, 0, tzinfo=SH)
MORNING = datetime(2025, 12, 11, 8, 0, tzinfo=SH)


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates()


class FakeConnection:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class FakePool:
    def __init__(self) -> None:
        self.conn = FakeConnection()

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConnection]:
        yield self.conn


class Writes:
    """The repository's writes this test cares about, recorded instead of run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.retries: list[dict[str, Any]] = []
        self.postponed: list[tuple[datetime, str]] = []

        async def retry_later(conn: Any, message_id: uuid.UUID, **kwargs: Any) -> bool:
            self.retries.append(kwargs)
            return True

        async def postpone(conn: Any, message_id: uuid.UUID, until: datetime, reason: str) -> None:
            self.postponed.append((until, reason))

        monkeypatch.setattr(repository, "retry_later", retry_later)
        monkeypatch.setattr(repository, "postpone", postpone)


def message(program: str = LG, kind: str = "rejected", **fields: Any) -> dict[str, Any]:
    row = {
        "message_id": uuid.uuid4(), "program": program, "kind": kind, "application_no": "LG2025-000123", "status": "pending",
        "provider": "aliyun", "tried_providers": ["aliyun"], "next_provider": None, "unsure_providers": [], "attempts": 1,
        "delivery_failures": 0, "mobile_hash": "h", "text": "短信", "sign_name": "龙岗区人工智能署",
        "params": json.dumps({"local": {"template": kind, "params": {}}}), "sent_at": None, "created_at": NIGHT,
    }
    return {**row, **fields}


def notifier(templates: Templates, now: datetime, quiet_hours: QuietHours | None = None) -> Notifier:
    return Notifier(pool=FakePool(), cipher=None, templates=templates, quiet_hours=quiet_hours or QuietHours(),  # type: ignore[arg-type]
                    temporal=None, provider_names=("aliyun", "tencent"), clock=lambda: now)  # type: ignore[arg-type]


def settings() -> Any:
    return SimpleNamespace(sms_same_content_interval_seconds=30, sms_daily_limit=10, sms_quiet_end=time(8, 0),
                           sms_max_send_attempts=5, sms_send_lease_seconds=60)


# --- a failed delivery reported in the night ---------------------------------------------------


@pytest.mark.parametrize(("program", "kind", "resend_at"), [
    (LG, "rejected", MORNING),  # the defect: resent at 23:00:30
    (SZ, "not_funded", MORNING),
    (LG, "paper_reminder", MORNING),
    (LG, "back_office_approved", NIGHT + timedelta(seconds=30)),  # exempt: its delivery starts the paper clock
    (SZ, "returned", NIGHT + timedelta(seconds=30)),  # exempt: the time to modify is running
])
async def test_a_delivery_failure_reported_at_night_is_resent_when_quiet_hours_end(
    templates: Templates, monkeypatch: pytest.MonkeyPatch, program: str, kind: str, resend_at: datetime,
) -> None:
    writes = Writes(monkeypatch)

    async def first_failure(conn: Any, message_id: uuid.UUID, error: str) -> int:
        return 1

    monkeypatch.setattr(repository, "count_delivery_failure", first_failure)
    await notifier(templates, NIGHT)._delivery_failed(FakeConnection(), message(program, kind), "UNDELIV")  # type: ignore[arg-type]
    [retry] = writes.retries
    assert retry["at"] == resend_at and retry["next_provider"] == "aliyun"


async def test_the_resend_to_the_other_provider_waits_for_the_configured_end(templates: Templates, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = Writes(monkeypatch)

    async def second_failure(conn: Any, message_id: uuid.UUID, error: str) -> int:
        return 2

    monkeypatch.setattr(repository, "count_delivery_failure", second_failure)
    late = notifier(templates, NIGHT, QuietHours(start=time(22, 30), end=time(7, 15)))
    await late._delivery_failed(FakeConnection(), message(), "UNDELIV")  # type: ignore[arg-type]
    [retry] = writes.retries
    assert retry["at"] == datetime(2025, 12, 11, 7, 15, tzinfo=SH) and retry["next_provider"] == "tencent"


def test_a_row_whose_template_is_gone_waits_for_the_morning(templates: Templates) -> None:
    n = notifier(templates, NIGHT)
    assert n.send_time(message("NO-SUCH-PROGRAM"), NIGHT) == MORNING
    assert n.send_time(message(kind="no_such_kind"), NIGHT) == MORNING
    assert n.send_time(message(), NIGHT - timedelta(hours=3)) == NIGHT - timedelta(hours=3)  # 20:00: not quiet


# --- the sender -----------------------------------------------------------------------------------


def sender(templates: Templates, now: datetime, providers: list[Any] | None = None) -> SmsSender:
    return SmsSender(FakePool(), providers or [], cipher=SimpleNamespace(decrypt=lambda sealed, context: "13800138000"),  # type: ignore[arg-type]
                     notifier=notifier(templates, now), settings=settings(), clock=lambda: now)


@pytest.mark.parametrize(("now", "kind", "retry_at"), [
    (NIGHT, "rejected", MORNING),
    (datetime(2025, 12, 10, 20, 59, 55, tzinfo=SH), "rejected", MORNING),  # the backoff runs into quiet hours
    (NIGHT, "back_office_approved", NIGHT + timedelta(seconds=10)),  # exempt: the backoff alone
    (datetime(2025, 12, 10, 12, 0, tzinfo=SH), "rejected", datetime(2025, 12, 10, 12, 0, 10, tzinfo=SH)),
])
async def test_a_provider_errors_backoff_keeps_to_quiet_hours(
    templates: Templates, monkeypatch: pytest.MonkeyPatch, now: datetime, kind: str, retry_at: datetime,
) -> None:
    writes = Writes(monkeypatch)
    row = message(kind=kind, status="sending", attempts=1)

    async def leased(conn: Any, message_id: uuid.UUID, *, token: uuid.UUID) -> dict[str, Any]:
        return row

    monkeypatch.setattr(repository, "leased_message", leased)
    throttled = SendResult(provider="aliyun", accepted=False, error_code="isv.BUSINESS_LIMIT_CONTROL", retryable=True)
    await sender(templates, now)._not_sent(Claim(row, uuid.uuid4()), throttled)  # type: ignore[arg-type]
    [retry] = writes.retries
    assert retry["at"] == retry_at


@pytest.fixture
def no_limits_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never_sent(conn: Any, **kwargs: Any) -> None:
        return None

    async def none_today(conn: Any, **kwargs: Any) -> int:
        return 0

    monkeypatch.setattr(repository, "last_same_text_sent", never_sent)
    monkeypatch.setattr(repository, "sent_since", none_today)


@pytest.mark.usefixtures("no_limits_reached")
@pytest.mark.parametrize(("kind", "claimed"), [("rejected", False), ("paper_reminder", False), ("returned", True)])
async def test_a_pending_message_due_in_quiet_hours_is_held_not_claimed(
    templates: Templates, monkeypatch: pytest.MonkeyPatch, kind: str, claimed: bool,
) -> None:
    """A row due at night anyway (rescheduled before resends kept to quiet hours, or by hand)."""
    writes = Writes(monkeypatch)
    assert await sender(templates, NIGHT)._within_limits(FakeConnection(), message(kind=kind)) is claimed  # type: ignore[arg-type]
    assert writes.postponed == ([] if claimed else [(MORNING, "quiet hours")])


@pytest.mark.parametrize(("kind", "postponed_to"), [
    ("rejected", MORNING),
    ("returned", datetime(2025, 12, 10, 21, 0, 5, tzinfo=SH)),  # exempt: the interval alone
])
async def test_the_same_text_interval_does_not_postpone_into_quiet_hours(
    templates: Templates, monkeypatch: pytest.MonkeyPatch, kind: str, postponed_to: datetime,
) -> None:
    writes = Writes(monkeypatch)
    now = datetime(2025, 12, 10, 20, 59, 50, tzinfo=SH)

    async def sent_just_before(conn: Any, **kwargs: Any) -> datetime:
        return now - timedelta(seconds=15)

    monkeypatch.setattr(repository, "last_same_text_sent", sent_just_before)
    assert await sender(templates, now)._within_limits(FakeConnection(), message(kind=kind)) is False  # type: ignore[arg-type]
    assert writes.postponed == [(postponed_to, "rate_limited: same text to this number")]


class NotThere:
    """A provider that did not get the message (its reply was lost before it took it)."""

    name = "local"

    def __init__(self) -> None:
        self.sent: list[SmsRequest] = []

    async def send(self, request: SmsRequest) -> SendResult:
        self.sent.append(request)
        return SendResult(provider=self.name, accepted=True, provider_message_id="p-1")

    async def find(self, message_id: str, *, mobile: str, sent_at: datetime) -> SentRecord:
        return SentRecord(found=False)


@pytest.mark.parametrize(("kind", "sent"), [("rejected", False), ("back_office_approved", True)])
async def test_a_lease_that_ran_out_at_night_sends_only_an_exempt_kind(
    templates: Templates, monkeypatch: pytest.MonkeyPatch, kind: str, sent: bool,
) -> None:
    """Outcome unknown at 20:59: the row stays `sending`; its lease runs out after 21:00, the provider
    is asked and does not have it. An exempt kind goes out; any other waits for the morning."""
    writes = Writes(monkeypatch)
    accepted: list[str] = []

    async def contact(conn: Any, application_no: str) -> dict[str, Any]:
        return {"mobile_sealed": json.dumps({"sealed": "x"})}

    async def hold_lease(conn: Any, message_id: uuid.UUID, **kwargs: Any) -> bool:
        return True

    async def mark_accepted(conn: Any, message_id: uuid.UUID, *, provider: str, provider_message_id: str | None) -> None:
        accepted.append(provider)

    monkeypatch.setattr(repository, "contact", contact)
    monkeypatch.setattr(repository, "hold_lease_to_call", hold_lease)
    monkeypatch.setattr(repository, "mark_accepted", mark_accepted)
    provider = NotThere()
    row = message(kind=kind, status="sending", unsure_providers=["local"], next_provider="local",
                  sent_at=datetime(2025, 12, 10, 20, 59, tzinfo=SH).astimezone(UTC))
    token = uuid.uuid4()
    await sender(templates, NIGHT, [provider])._send(Claim(row, token))  # type: ignore[arg-type]
    assert (len(provider.sent), accepted) == ((1, ["local"]) if sent else (0, []))
    if not sent:
        [retry] = writes.retries
        assert retry == {"at": MORNING, "error": "quiet hours", "next_provider": "local", "token": token}
