"""Alibaba Cloud SMS (dysmsapi 2017-05-25) through its official SDK, `alibabacloud-dysmsapi20170525`.

- send: `Client.send_sms_async(SendSmsRequest(phone_numbers, sign_name, template_code,
  template_param=<JSON>, out_id=<our message id>))`; `Code == "OK"` is an accept, `BizId` the
  provider's id. Business errors come back as HTTP 200 with another `Code` (`isv.*`, `isp.*`);
  gateway errors as HTTP 4xx/5xx (`ThrottlingException`, `ClientException`, `ServerException`).
- find: `Client.query_send_details_async(QuerySendDetailsRequest(phone_number, send_date
  "yyyyMMdd" (China time), page_size=50, current_page))`, matched on `OutId`; `SendStatus` 1
  waiting for the carrier's receipt, 2 failed (`ErrCode`), 3 delivered (`ReceiveDate`).

The endpoint and protocol are configurable so that tests point the SDK at a local fake.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from alibabacloud_dysmsapi20170525 import models as dysms
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import exceptions as openapi_exceptions
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import UnretryableException
from Tea.exceptions import TeaException

from services.notify.providers.failover import SmsProviderUnavailable
from services.notify.providers.port import SendResult, SentRecord, SmsRequest, log_send
from subsidy.identifiers import normalise_mobile
from subsidy.logging import get_logger

if TYPE_CHECKING:
    from services.notify.providers.settings import SmsProviderSettings

__all__ = ["DEFINITIVE_ERROR_CODES", "AliyunSmsProvider", "is_retryable", "outcome_unknown"]

log = get_logger(__name__)
CHINA = ZoneInfo("Asia/Shanghai")
NAME = "aliyun"
PAGE_SIZE = 50  # the API's maximum
MAX_PAGES = 20  # 1,000 messages to one number on one day: more is not ours to page through
# A send recorded just before midnight may be dated the next day by the provider.
_DATE_MARGIN = timedelta(minutes=5)

# Rejections of the message itself: the number or the content. Another provider would refuse
# them too, so there is no failover and no retry. Everything else (throttling and frequency
# limits, system errors, this account's balance, permissions, signatures and templates, unknown
# codes) is this provider's problem: worth failing over, and retrying later.
DEFINITIVE_ERROR_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.PHONE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.PHONE_NUMBER_COUNT_OVER_LIMIT",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.INVALID_JSON_PARAM",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.CONTENT_MISSING_PARAMETERS",
    }
)
_NUMBER_ERROR_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.PHONE_NUMBER_ILLEGAL"})


def is_retryable(code: str | None) -> bool:
    return code not in DEFINITIVE_ERROR_CODES


class AliyunSmsProvider:
    """The `SmsProvider` for Alibaba Cloud SMS."""

    name = NAME

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str = "dysmsapi.aliyuncs.com",
        protocol: str = "https",
        timeout_s: float = 10.0,
    ) -> None:
        timeout_ms = max(1, int(timeout_s * 1000))
        self._client = Client(
            Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=endpoint,
                protocol=protocol,
                connect_timeout=timeout_ms,
                read_timeout=timeout_ms,
            )
        )
        self.endpoint = endpoint

    @classmethod
    def from_settings(cls, settings: SmsProviderSettings) -> AliyunSmsProvider:
        return cls(
            access_key_id=settings.aliyun_sms_access_key_id,
            access_key_secret=settings.aliyun_sms_access_key_secret.get_secret_value(),
            endpoint=settings.aliyun_sms_endpoint,
            protocol=settings.aliyun_sms_protocol,
            timeout_s=settings.sms_request_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"AliyunSmsProvider(endpoint={self.endpoint!r})"

    async def send(self, request: SmsRequest) -> SendResult:
        sdk_request = dysms.SendSmsRequest(
            phone_numbers=normalise_mobile(request.mobile) or request.mobile,
            sign_name=request.sign_name,
            template_code=request.template_code,
            template_param=json.dumps(request.params, ensure_ascii=False) if request.params else None,
            out_id=request.message_id,
        )
        try:
            response = await self._client.send_sms_async(sdk_request)
        except Exception as exc:
            code, retryable = _map_exception(exc)
            result = SendResult(
                provider=NAME, accepted=False, error_code=code, retryable=retryable, outcome_unknown=outcome_unknown(exc)
            )
        else:
            body = response.body
            if body is not None and body.code == "OK":
                result = SendResult(provider=NAME, accepted=True, provider_message_id=body.biz_id)
            else:
                code = (body.code if body is not None else None) or "EmptyResponse"
                result = SendResult(provider=NAME, accepted=False, error_code=code, retryable=is_retryable(code))
        log_send(NAME, request, result)
        return result

    async def find(self, message_id: str, *, mobile: str, sent_at: datetime) -> SentRecord:
        """Our message by `OutId` among the number's messages of the day it was sent."""
        for send_date in _send_dates(sent_at):
            for page in range(1, MAX_PAGES + 1):
                details, total = await self._query(mobile, send_date, page)
                if details is None:  # the number itself is refused: nothing was sent to it
                    log.info("sms.find", provider=NAME, message_id=message_id, outcome="number_refused")
                    return SentRecord(found=False)
                for dto in details:
                    if dto.out_id == message_id:
                        record = _record(dto)
                        log.info("sms.find", provider=NAME, message_id=message_id, outcome=record.status)
                        return record
                if page * PAGE_SIZE >= total or not details:
                    break
        log.info("sms.find", provider=NAME, message_id=message_id, outcome="not_found")
        return SentRecord(found=False)

    async def _query(
        self, mobile: str, send_date: date, page: int
    ) -> tuple[list[dysms.QuerySendDetailsResponseBodySmsSendDetailDTOsSmsSendDetailDTO] | None, int]:
        sdk_request = dysms.QuerySendDetailsRequest(
            phone_number=normalise_mobile(mobile) or mobile,
            send_date=send_date.strftime("%Y%m%d"),
            page_size=PAGE_SIZE,
            current_page=page,
        )
        try:
            response = await self._client.query_send_details_async(sdk_request)
        except Exception as exc:
            code, _ = _map_exception(exc)
            if code in _NUMBER_ERROR_CODES:
                return None, 0
            raise SmsProviderUnavailable(NAME, code) from None
        body = response.body
        if body is None or body.code != "OK":
            code = (body.code if body is not None else None) or "EmptyResponse"
            if code in _NUMBER_ERROR_CODES:
                return None, 0
            raise SmsProviderUnavailable(NAME, code)
        dtos = body.sms_send_detail_dtos
        details = list(dtos.sms_send_detail_dto or []) if dtos is not None else []
        return details, int(body.total_count or 0)


def _send_dates(sent_at: datetime) -> list[date]:
    if sent_at.tzinfo is None:
        raise ValueError("sent_at must be timezone-aware")
    dates: list[date] = []
    for moment in (sent_at - _DATE_MARGIN, sent_at, sent_at + _DATE_MARGIN):
        day = moment.astimezone(CHINA).date()
        if day not in dates:
            dates.append(day)
    return dates


def _record(dto: dysms.QuerySendDetailsResponseBodySmsSendDetailDTOsSmsSendDetailDTO) -> SentRecord:
    extra = {k: v for k, v in (("send_date", dto.send_date), ("template_code", dto.template_code)) if v}
    status = int(dto.send_status) if dto.send_status is not None else 1
    if status == 3:
        return SentRecord(
            found=True, status="DELIVERED", reported_at=_china_time(dto.receive_date), extra=extra
        )
    if status == 2:
        return SentRecord(
            found=True,
            status="FAILED",
            reported_at=_china_time(dto.receive_date),
            error_code=dto.err_code or None,
            extra=extra,
        )
    return SentRecord(found=True, status="SENDING", extra=extra)


def _china_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return None


def outcome_unknown(exc: BaseException) -> bool:
    """Whether the request may have reached Alibaba Cloud although no answer came back: every
    failure except an answer of the API itself (a `ClientException`/`ThrottlingException`, or a
    `ServerException` carrying an API error code) and a connection that was never made."""
    if isinstance(exc, openapi_exceptions.ThrottlingException | openapi_exceptions.ClientException):
        return False
    if isinstance(exc, openapi_exceptions.ServerException):
        return not exc.code or exc.code == "None"  # a bare 5xx (a gateway's): the backend may have it
    if isinstance(exc, UnretryableException):
        inner: Any = getattr(exc, "inner_exception", None)
        return not _never_connected(inner)
    if isinstance(exc, ConnectionRefusedError):
        return False
    return True


def _never_connected(exc: Any) -> bool:
    """The connection was refused or could not be made (the SDK reports it as a RetryError whose
    message is aiohttp's "Cannot connect to host"): the request never left this process."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    name = type(exc).__name__
    if name in {"ClientConnectorError", "ClientConnectorDNSError", "ClientConnectorCertificateError"}:
        return True
    return "Cannot connect to host" in str(exc)


def _map_exception(exc: BaseException) -> tuple[str, bool]:
    """(error code, retryable) of an exception out of the SDK."""
    if isinstance(exc, openapi_exceptions.ThrottlingException):
        return exc.code or "Throttling", True
    if isinstance(exc, openapi_exceptions.ServerException):
        return exc.code if exc.code and exc.code != "None" else f"HTTP{exc.status_code}", True
    if isinstance(exc, openapi_exceptions.ClientException):
        # 4xx from the gateway: our credentials, signature, permissions or a throttle without a
        # retry-after header; the code says which, and the message itself is not at fault
        # unless the code is one of the definitive ones.
        code = exc.code if exc.code and exc.code != "None" else f"HTTP{exc.status_code}"
        return code, is_retryable(code)
    if isinstance(exc, UnretryableException):
        # Connection refused or reset, timeouts, unreadable answers (the SDK wraps them).
        inner: Any = getattr(exc, "inner_exception", None)
        return f"NetworkError:{type(inner).__name__ if inner is not None else 'unknown'}", True
    if isinstance(exc, TeaException):
        return exc.code or type(exc).__name__, True
    if isinstance(exc, OSError | TimeoutError):
        return f"NetworkError:{type(exc).__name__}", True
    return f"exception:{type(exc).__name__}", True
