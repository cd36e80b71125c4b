"""Tencent Cloud SMS (API 2021-01-11) through its official SDK, `tencentcloud-sdk-python-sms`.

- send: `SmsClient.SendSms(SendSmsRequest)` with `PhoneNumberSet ["+86…"]`, `SmsSdkAppId`,
  `SignName`, `TemplateId`, `TemplateParamSet` (the request's params, in order) and
  `SessionContext` = our message id. A request-level error raises `TencentCloudSDKException`
  (code e.g. `RequestLimitExceeded`, `InternalError.*`, `AuthFailure.*`; `ClientNetworkError`
  for connection errors and timeouts, `ServerNetworkError` for a non-200 answer); the number's
  own outcome is `SendStatusSet[0].Code` ("Ok", or e.g. `LimitExceeded.PhoneNumberDailyLimit`,
  `InvalidParameterValue.IncorrectPhoneNumber`), and `SerialNo` the provider's id.
- find: `SmsClient.PullSmsSendStatusByPhoneNumber(PullSmsSendStatusByPhoneNumberRequest(
  BeginTime, EndTime, Offset, Limit, PhoneNumber, SmsSdkAppId))`, matched on `SessionContext`;
  `ReportStatus` SUCCESS -> DELIVERED, FAIL -> FAILED (`Description`), `UserReceiveTime`.

Two properties of Tencent's API the caller must know:
- the status pull lists a message only once the carrier has reported on it: a message still in
  flight is not listed. For `report_grace_s` after `sent_at`, "not listed" is therefore answered
  as `SentRecord(found=False, extra={"conclusive": "false", ...})`, which `reconcile` treats as
  "cannot tell yet" rather than "never sent";
- `SessionContext` is echoed in status reports only when Tencent has enabled it for the SDK app
  (a ticket to Tencent Cloud SMS support); without it `find` never finds anything.

The SDK is synchronous (requests): every call runs in a worker thread (`asyncio.to_thread`),
on a client of its own.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

from services.notify.providers.failover import SmsProviderUnavailable
from services.notify.providers.port import SendResult, SentRecord, SmsRequest, log_send
from subsidy.identifiers import normalise_mobile
from subsidy.logging import get_logger

if TYPE_CHECKING:
    from services.notify.providers.settings import SmsProviderSettings

__all__ = ["DEFINITIVE_ERROR_CODES", "TencentSmsProvider", "is_retryable", "outcome_unknown"]

log = get_logger(__name__)
# The SDK's DEBUG lines dump whole requests and answers (numbers, template parameters): not ours to log.
logging.getLogger("tencentcloud_sdk_common").setLevel(logging.INFO)
NAME = "tencent"
PULL_LIMIT = 100  # the API's maximum
MAX_PAGES = 10
_BEGIN_MARGIN = timedelta(minutes=5)
_MAX_WINDOW = timedelta(days=7)

# Rejections of the message itself (see aliyun.py): no failover, no retry. Every other code
# (RequestLimitExceeded, LimitExceeded.* frequency limits, InternalError.*, network errors,
# this account's balance, permissions, signatures and templates, unknown codes) is retryable.
DEFINITIVE_ERROR_CODES = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberParseFail",
        "FailedOperation.PhoneNumberInBlacklist",
        "MissingParameter.EmptyPhoneNumberSet",
        "LimitExceeded.PhoneNumberCountLimit",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        "InvalidParameterValue.ContentLengthLimit",
        "InvalidParameter.DirtyWordFound",
        "FailedOperation.ContainSensitiveWord",
    }
)
_NUMBER_ERROR_CODES = frozenset(
    {"InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberParseFail"}
)


def is_retryable(code: str | None) -> bool:
    return code not in DEFINITIVE_ERROR_CODES


def outcome_unknown(exc: TencentCloudSDKException) -> bool:
    """Whether the request may have reached Tencent Cloud although no answer came back: a network
    error other than a connection that was never made (a timeout, a connection dropped after the
    request went out), or a non-200 answer without an API error (`ServerNetworkError`, a
    gateway's). An API error code (`RequestLimitExceeded`, `InternalError.*`, ...) is an answer."""
    code = exc.get_code()
    if code == "ServerNetworkError":
        return True
    if code == "ClientNetworkError":
        message = str(exc.get_message() if hasattr(exc, "get_message") else exc)
        return not any(s in message for s in ("NewConnectionError", "Failed to establish a new connection", "Connection refused"))
    return False


def e164(mobile: str) -> str:
    """'+8613800138000' for a mainland number in any accepted form."""
    return "+86" + (normalise_mobile(mobile) or mobile)


class TencentSmsProvider:
    """The `SmsProvider` for Tencent Cloud SMS."""

    name = NAME

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        region: str = "ap-guangzhou",
        endpoint: str = "sms.tencentcloudapi.com",
        scheme: str = "https",
        timeout_s: float = 10.0,
        report_grace_s: float = 300.0,
    ) -> None:
        self._credential = Credential(secret_id, secret_key)  # raises on empty or padded values
        self._region = region
        self._endpoint = endpoint
        self._scheme = scheme
        self._timeout_s = timeout_s
        self.sdk_app_id = sdk_app_id
        self.report_grace = timedelta(seconds=report_grace_s)

    @classmethod
    def from_settings(cls, settings: SmsProviderSettings, **overrides: Any) -> TencentSmsProvider:
        kwargs: dict[str, Any] = {
            "secret_id": settings.tencent_sms_secret_id,
            "secret_key": settings.tencent_sms_secret_key.get_secret_value(),
            "sdk_app_id": settings.tencent_sms_sdk_app_id,
            "region": settings.tencent_sms_region,
            "endpoint": settings.tencent_sms_endpoint,
            "scheme": settings.tencent_sms_scheme,
            "timeout_s": settings.sms_request_timeout_seconds,
        }
        return cls(**(kwargs | overrides))

    def __repr__(self) -> str:
        return f"TencentSmsProvider(endpoint={self._endpoint!r}, sdk_app_id={self.sdk_app_id!r})"

    def _client(self) -> SmsClient:
        http_profile = HttpProfile(protocol=self._scheme, endpoint=self._endpoint, reqTimeout=self._timeout_s)
        return SmsClient(self._credential, self._region, ClientProfile(httpProfile=http_profile))

    async def send(self, request: SmsRequest) -> SendResult:
        sdk_request = sms_models.SendSmsRequest()
        sdk_request.PhoneNumberSet = [e164(request.mobile)]
        sdk_request.SmsSdkAppId = self.sdk_app_id
        sdk_request.SignName = request.sign_name
        sdk_request.TemplateId = request.template_code
        sdk_request.TemplateParamSet = list(request.params.values())
        sdk_request.SessionContext = request.message_id
        try:
            response = await asyncio.to_thread(lambda: self._client().SendSms(sdk_request))
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "TencentCloudSDKException"
            result = SendResult(
                provider=NAME, accepted=False, error_code=code, retryable=is_retryable(code), outcome_unknown=outcome_unknown(exc)
            )
        except Exception as exc:
            result = SendResult(
                provider=NAME, accepted=False, error_code=f"exception:{type(exc).__name__}", retryable=True,
                outcome_unknown=True,
            )
        else:
            statuses = list(response.SendStatusSet or [])
            status = statuses[0] if statuses else None
            if status is not None and status.Code == "Ok":
                result = SendResult(provider=NAME, accepted=True, provider_message_id=status.SerialNo)
            else:
                code = (status.Code if status is not None else None) or "EmptySendStatusSet"
                result = SendResult(provider=NAME, accepted=False, error_code=code, retryable=is_retryable(code))
        log_send(NAME, request, result)
        return result

    async def find(self, message_id: str, *, mobile: str, sent_at: datetime) -> SentRecord:
        """Our message by `SessionContext` among the number's status reports since `sent_at`."""
        if sent_at.tzinfo is None:
            raise ValueError("sent_at must be timezone-aware")
        now = datetime.now(UTC)
        begin = sent_at - _BEGIN_MARGIN
        end = min(now + timedelta(minutes=1), begin + _MAX_WINDOW)
        for page in range(MAX_PAGES):
            statuses = await self._pull(mobile, begin, end, offset=page * PULL_LIMIT)
            if statuses is None:  # the number itself is refused: nothing was sent to it
                log.info("sms.find", provider=NAME, message_id=message_id, outcome="number_refused")
                return SentRecord(found=False)
            for status in statuses:
                if status.SessionContext == message_id:
                    record = _record(status)
                    log.info("sms.find", provider=NAME, message_id=message_id, outcome=record.status)
                    return record
            if len(statuses) < PULL_LIMIT:
                break
        if now - sent_at < self.report_grace:
            log.info("sms.find", provider=NAME, message_id=message_id, outcome="not_reported_yet")
            return SentRecord(
                found=False,
                extra={
                    "conclusive": "false",
                    "reason": "tencent lists a message only once the carrier has reported on it",
                },
            )
        log.info("sms.find", provider=NAME, message_id=message_id, outcome="not_found")
        return SentRecord(found=False)

    async def _pull(
        self, mobile: str, begin: datetime, end: datetime, *, offset: int
    ) -> list[sms_models.PullSmsSendStatus] | None:
        sdk_request = sms_models.PullSmsSendStatusByPhoneNumberRequest()
        sdk_request.BeginTime = int(begin.timestamp())
        sdk_request.EndTime = int(end.timestamp())
        sdk_request.Offset = offset
        sdk_request.Limit = PULL_LIMIT
        sdk_request.PhoneNumber = e164(mobile)
        sdk_request.SmsSdkAppId = self.sdk_app_id
        try:
            response = await asyncio.to_thread(lambda: self._client().PullSmsSendStatusByPhoneNumber(sdk_request))
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "TencentCloudSDKException"
            if code in _NUMBER_ERROR_CODES:
                return None
            raise SmsProviderUnavailable(NAME, code) from None
        except Exception as exc:
            raise SmsProviderUnavailable(NAME, f"exception:{type(exc).__name__}") from None
        return list(response.PullSmsSendStatusSet or [])


def _record(status: sms_models.PullSmsSendStatus) -> SentRecord:
    reported_at = (
        datetime.fromtimestamp(int(status.UserReceiveTime), UTC) if status.UserReceiveTime else None
    )
    extra = {"description": status.Description} if status.Description else {}
    if status.ReportStatus == "SUCCESS":
        return SentRecord(
            found=True,
            provider_message_id=status.SerialNo,
            status="DELIVERED",
            reported_at=reported_at,
            extra=extra,
        )
    if status.ReportStatus == "FAIL":
        return SentRecord(
            found=True,
            provider_message_id=status.SerialNo,
            status="FAILED",
            reported_at=reported_at,
            error_code=status.Description or "FAIL",
            extra=extra,
        )
    return SentRecord(found=True, provider_message_id=status.SerialNo, status="SENDING", extra=extra)
