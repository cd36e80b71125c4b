"""Fake Alibaba Cloud and Tencent Cloud SMS servers for tests: real HTTP on 127.0.0.1.

Each speaks just enough of its API for the official SDK (any signature is accepted):

- `FakeAliyun` (dysmsapi 2017-05-25, RPC style: action in `x-acs-action` or `Action`, parameters
  in the query string or a form body): `SendSms`, `QuerySendDetails`.
- `FakeTencent` (sms 2021-01-11: action in `X-TC-Action`, JSON body): `SendSms`,
  `PullSmsSendStatusByPhoneNumber` (like the real API, it lists only messages with a carrier
  report: `mark` one DELIVERED or FAILED to make it appear).

Both record every send they receive (`messages`, `send_requests`, `query_requests`), can be
told to fail the next N calls of an action (`fail_next`) and to mark a message delivered or
failed (`mark`). Use as context managers:

    with FakeAliyun() as aliyun, FakeTencent() as tencent:
        provider = AliyunSmsProvider(access_key_id="ak", access_key_secret="sk",
                                     endpoint=aliyun.endpoint, protocol="http")
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

__all__ = ["AliyunMessage", "FakeAliyun", "FakeTencent", "TencentMessage"]

CHINA = ZoneInfo("Asia/Shanghai")
Status = Literal["SENDING", "DELIVERED", "FAILED"]


@dataclass(frozen=True)
class _Failure:
    status: int  # HTTP status; 0 = drop the connection without an answer
    code: str | None = None  # the API error code
    per_number: bool = False  # Tencent: in SendStatusSet[].Code rather than Response.Error
    headers: tuple[tuple[str, str], ...] = ()
    accept: bool = False  # with status 0: the request is carried out (a send recorded), then the reply is lost


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when a test sends dozens at once on a
    # busy machine (a fresh-clone CI run lost one of 53 concurrent sends that way).
    request_queue_size = 128


class _FakeServer:
    """An HTTP server in a daemon thread; subclasses answer `handle(action, params)`."""

    name = "fake"
    FAILURES: dict[str, _Failure] = {}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[_Failure]] = {}
        self._counter = itertools.count(1)
        self.requests: list[tuple[str, dict[str, Any]]] = []  # every call received: (action, params)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> _FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                fake._serve(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # request lines carry phone numbers: never printed

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """host:port, for the SDK's endpoint setting (with protocol/scheme http)."""
        return f"127.0.0.1:{self.port}"

    # --- switches ----------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        kind: str = "throttling",
        *,
        action: str = "SendSms",
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        """Make the next `n` calls of `action` fail as `kind` (see FAILURES), or with `code`/`status`."""
        if code is not None or status is not None:
            failure = _Failure(status=200 if status is None else status, code=code)
        else:
            if kind not in self.FAILURES:
                raise ValueError(f"unknown failure kind {kind!r}; known: {sorted(self.FAILURES)}")
            failure = self.FAILURES[kind]
        with self._lock:
            self._failures.setdefault(action, deque()).extend([failure] * n)

    def calls(self, action: str) -> int:
        with self._lock:
            return sum(1 for a, _ in self.requests if a == action)

    # --- plumbing ----------------------------------------------------------------------------

    def _next_failure(self, action: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(action)
            return queue.popleft() if queue else None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        action, params = self.parse(handler, raw)
        with self._lock:
            self.requests.append((action, params))
        failure = self._next_failure(action)
        if failure is not None and failure.status == 0:
            if failure.accept:
                self.handle(action, params, None)  # the provider has it; its answer never arrives
            handler.close_connection = True
            return  # no answer at all: the client sees the connection closed
        status, body, headers = self.handle(action, params, failure)
        payload = json.dumps(body, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    content_type = "application/json"

    def parse(self, handler: BaseHTTPRequestHandler, raw: bytes) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def handle(
        self, action: str, params: dict[str, Any], failure: _Failure | None
    ) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError


# --- Alibaba Cloud ---------------------------------------------------------------------------


@dataclass
class AliyunMessage:
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, Any]
    out_id: str | None
    biz_id: str
    sent_at: datetime
    status: Status = "SENDING"
    err_code: str | None = None
    received_at: datetime | None = None

    def dto(self) -> dict[str, Any]:
        send_status = {"SENDING": 1, "FAILED": 2, "DELIVERED": 3}[self.status]
        return {
            "PhoneNum": self.phone,
            "SendStatus": send_status,
            "ErrCode": self.err_code or ("DELIVERED" if self.status == "DELIVERED" else ""),
            "TemplateCode": self.template_code,
            "Content": f"【{self.sign_name}】{json.dumps(self.params, ensure_ascii=False)}",
            "SendDate": self.sent_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "ReceiveDate": self.received_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
            if self.received_at
            else "",
            "OutId": self.out_id,
        }


class FakeAliyun(_FakeServer):
    """Alibaba Cloud SMS. Failure kinds for `fail_next`:

    throttling      HTTP 400 Throttling.User (the API gateway's flow control)
    throttling_retry_after  the same with `x-acs-retry-after` (the SDK's ThrottlingException)
    business_limit  HTTP 200 Code isv.BUSINESS_LIMIT_CONTROL (the number's frequency limit)
    server_error    HTTP 503 ServiceUnavailable
    system_error    HTTP 200 Code isp.SYSTEM_ERROR
    invalid_number  HTTP 200 Code isv.MOBILE_NUMBER_ILLEGAL
    disconnect      the connection is closed without an answer
    lost_reply      the message is accepted (recorded), then the connection is closed without an answer
    """

    name = "aliyun"
    content_type = "application/json;charset=utf-8"
    FAILURES = {
        "throttling": _Failure(400, "Throttling.User"),
        "throttling_retry_after": _Failure(400, "Throttling.User", headers=(("x-acs-retry-after", "1000"),)),
        "business_limit": _Failure(200, "isv.BUSINESS_LIMIT_CONTROL"),
        "server_error": _Failure(503, "ServiceUnavailable"),
        "system_error": _Failure(200, "isp.SYSTEM_ERROR"),
        "invalid_number": _Failure(200, "isv.MOBILE_NUMBER_ILLEGAL"),
        "disconnect": _Failure(0),
        "lost_reply": _Failure(0, accept=True),
    }

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[AliyunMessage] = []  # accepted sends, in order

    @property
    def send_requests(self) -> int:
        """SendSms calls received, accepted or not."""
        return self.calls("SendSms")

    @property
    def query_requests(self) -> int:
        return self.calls("QuerySendDetails")

    def by_out_id(self, out_id: str) -> AliyunMessage:
        with self._lock:
            return next(m for m in self.messages if m.out_id == out_id)

    def mark(self, out_id: str, status: Status, *, err_code: str | None = None) -> None:
        """Set the carrier's report on the message sent with `out_id`."""
        with self._lock:
            message = next(m for m in self.messages if m.out_id == out_id)
            message.status = status
            message.err_code = err_code if status == "FAILED" else None
            message.received_at = datetime.now(UTC) if status != "SENDING" else None

    def parse(self, handler: BaseHTTPRequestHandler, raw: bytes) -> tuple[str, dict[str, Any]]:
        params = {k: v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        if raw and "json" not in (handler.headers.get("Content-Type") or ""):
            params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        action = handler.headers.get("x-acs-action") or params.get("Action") or ""
        return action, params

    def handle(
        self, action: str, params: dict[str, Any], failure: _Failure | None
    ) -> tuple[int, Any, dict[str, str]]:
        request_id = str(uuid.uuid4()).upper()
        if failure is not None:
            body = {"Code": failure.code, "Message": "fake failure", "RequestId": request_id}
            return failure.status, body, dict(failure.headers)
        if action == "SendSms":
            return 200, self._send(params, request_id), {}
        if action == "QuerySendDetails":
            return 200, self._query(params, request_id), {}
        return 404, {"Code": "InvalidAction.NotFound", "Message": action, "RequestId": request_id}, {}

    def _send(self, params: dict[str, Any], request_id: str) -> dict[str, Any]:
        phones = [p for p in str(params.get("PhoneNumbers", "")).split(",") if p]
        if len(phones) != 1:
            return {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "one number", "RequestId": request_id}
        template_param = params.get("TemplateParam")
        biz_id = f"{next(self._counter):06d}^0"
        with self._lock:
            self.messages.append(
                AliyunMessage(
                    phone=phones[0],
                    sign_name=params.get("SignName", ""),
                    template_code=params.get("TemplateCode", ""),
                    params=json.loads(template_param) if template_param else {},
                    out_id=params.get("OutId"),
                    biz_id=biz_id,
                    sent_at=datetime.now(UTC),
                )
            )
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}

    def _query(self, params: dict[str, Any], request_id: str) -> dict[str, Any]:
        phone = params.get("PhoneNumber")
        send_date = params.get("SendDate")
        page_size = int(params.get("PageSize") or 10)
        page = int(params.get("CurrentPage") or 1)
        if not phone or not send_date or not 1 <= page_size <= 50:
            return {"Code": "isv.INVALID_PARAMETERS", "Message": "parameters", "RequestId": request_id}
        with self._lock:
            rows = [
                m
                for m in self.messages
                if m.phone == phone
                and m.sent_at.astimezone(CHINA).strftime("%Y%m%d") == send_date
                and (not params.get("BizId") or m.biz_id == params["BizId"])
            ]
            dtos = [m.dto() for m in rows[(page - 1) * page_size : page * page_size]]
        return {
            "Code": "OK",
            "Message": "OK",
            "RequestId": request_id,
            "TotalCount": len(rows),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
        }


# --- Tencent Cloud ---------------------------------------------------------------------------


@dataclass
class TencentMessage:
    phone: str  # E.164, as sent: +8613800138000
    sdk_app_id: str
    sign_name: str
    template_id: str
    params: list[str]
    session_context: str | None
    serial_no: str
    sent_at: datetime
    status: Status = "SENDING"
    description: str | None = None
    received_at: datetime | None = None

    def report(self) -> dict[str, Any]:
        return {
            "UserReceiveTime": int((self.received_at or self.sent_at).timestamp()),
            "CountryCode": "86",
            "SubscriberNumber": self.phone.removeprefix("+86"),
            "PhoneNumber": self.phone,
            "SerialNo": self.serial_no,
            "ReportStatus": "SUCCESS" if self.status == "DELIVERED" else "FAIL",
            "Description": self.description or ("用户接收成功" if self.status == "DELIVERED" else "FAIL"),
            "SessionContext": self.session_context,
        }


class FakeTencent(_FakeServer):
    """Tencent Cloud SMS. Failure kinds for `fail_next`:

    throttling      Response.Error RequestLimitExceeded (the API's rate limit)
    number_limit    SendStatusSet[0].Code LimitExceeded.PhoneNumberDailyLimit
    server_error    HTTP 502 (the SDK's ServerNetworkError)
    internal_error  Response.Error InternalError.OtherError
    invalid_number  SendStatusSet[0].Code InvalidParameterValue.IncorrectPhoneNumber
    disconnect      the connection is closed without an answer
    lost_reply      the message is accepted (recorded), then the connection is closed without an answer
    """

    name = "tencent"
    content_type = "application/json"  # exactly: the SDK only looks for errors in this type
    FAILURES = {
        "throttling": _Failure(200, "RequestLimitExceeded"),
        "number_limit": _Failure(200, "LimitExceeded.PhoneNumberDailyLimit", per_number=True),
        "server_error": _Failure(502, None),
        "internal_error": _Failure(200, "InternalError.OtherError"),
        "invalid_number": _Failure(200, "InvalidParameterValue.IncorrectPhoneNumber", per_number=True),
        "disconnect": _Failure(0),
        "lost_reply": _Failure(0, accept=True),
    }

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[TencentMessage] = []  # accepted sends, in order

    @property
    def send_requests(self) -> int:
        return self.calls("SendSms")

    @property
    def query_requests(self) -> int:
        return self.calls("PullSmsSendStatusByPhoneNumber")

    def by_session_context(self, session_context: str) -> TencentMessage:
        with self._lock:
            return next(m for m in self.messages if m.session_context == session_context)

    def mark(self, session_context: str, status: Status, *, description: str | None = None) -> None:
        """Set the carrier's report on the message sent with `session_context`."""
        with self._lock:
            message = next(m for m in self.messages if m.session_context == session_context)
            message.status = status
            message.description = description
            message.received_at = datetime.now(UTC) if status != "SENDING" else None

    def parse(self, handler: BaseHTTPRequestHandler, raw: bytes) -> tuple[str, dict[str, Any]]:
        params = json.loads(raw) if raw else {}
        return handler.headers.get("X-TC-Action") or "", params

    def handle(
        self, action: str, params: dict[str, Any], failure: _Failure | None
    ) -> tuple[int, Any, dict[str, str]]:
        request_id = str(uuid.uuid4())
        if failure is not None and not failure.per_number:
            if failure.code is None:
                return failure.status, {"message": "bad gateway"}, {}
            error = {"Error": {"Code": failure.code, "Message": "fake failure"}, "RequestId": request_id}
            return failure.status, {"Response": error}, {}
        if action == "SendSms":
            return 200, {"Response": self._send(params, request_id, failure)}, {}
        if action == "PullSmsSendStatusByPhoneNumber":
            return 200, {"Response": self._pull(params, request_id)}, {}
        error = {"Error": {"Code": "InvalidAction", "Message": action}, "RequestId": request_id}
        return 200, {"Response": error}, {}

    def _send(self, params: dict[str, Any], request_id: str, failure: _Failure | None) -> dict[str, Any]:
        statuses = []
        for phone in params.get("PhoneNumberSet") or []:
            if failure is not None:
                statuses.append(
                    {"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": params.get("SessionContext"),
                     "Code": failure.code, "Message": "fake failure", "IsoCode": "CN"}
                )
                continue
            serial_no = f"2433:{next(self._counter):012d}"
            with self._lock:
                self.messages.append(
                    TencentMessage(
                        phone=phone,
                        sdk_app_id=str(params.get("SmsSdkAppId")),
                        sign_name=params.get("SignName", ""),
                        template_id=str(params.get("TemplateId")),
                        params=list(params.get("TemplateParamSet") or []),
                        session_context=params.get("SessionContext"),
                        serial_no=serial_no,
                        sent_at=datetime.now(UTC),
                    )
                )
            statuses.append(
                {"SerialNo": serial_no, "PhoneNumber": phone, "Fee": 1, "SessionContext": params.get("SessionContext"),
                 "Code": "Ok", "Message": "send success", "IsoCode": "CN"}
            )
        return {"SendStatusSet": statuses, "RequestId": request_id}

    def _pull(self, params: dict[str, Any], request_id: str) -> dict[str, Any]:
        begin = int(params.get("BeginTime") or 0)
        end = int(params.get("EndTime") or 2**31)
        offset = int(params.get("Offset") or 0)
        limit = int(params.get("Limit") or 0)
        if not 1 <= limit <= 100 or not params.get("PhoneNumber") or not params.get("SmsSdkAppId"):
            error = {"Error": {"Code": "InvalidParameterValue.LimitVerifyFail", "Message": "limit"}, "RequestId": request_id}
            return error
        with self._lock:
            rows = [
                m.report()
                for m in self.messages
                if m.phone == params["PhoneNumber"]
                and m.sdk_app_id == str(params["SmsSdkAppId"])
                and m.status != "SENDING"  # only what the carrier has reported on
                and begin <= int(m.sent_at.timestamp()) <= end
            ]
        return {"PullSmsSendStatusSet": rows[offset : offset + limit], "RequestId": request_id}
