"""What the API's routes share: times for people (Asia/Shanghai, with the weekday), the
Idempotency-Key and request id headers, the decision service of the running process."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Header, Request

from services.review.decisions.service import DecisionService
from subsidy.web import ApiError, checked_application_no  # noqa: F401  (the routes import it from here)

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def local(moment: datetime | None) -> str | None:
    """An instant as people in Shenzhen read it: ISO 8601 with +08:00."""
    return moment.astimezone(SHANGHAI).isoformat() if moment is not None else None


def weekday(moment: datetime | None) -> str | None:
    return WEEKDAYS_ZH[moment.astimezone(SHANGHAI).weekday()] if moment is not None else None


async def idempotency_key(  # async: no thread-pool hop per request (see subsidy.web.get_resources)
    key: Annotated[str | None, Header(alias="Idempotency-Key", description=(
        "Required (400 without): a unique key per action, 8-128 characters of A-Z a-z 0-9 . _ : -. The same "
        "request again (same official, action, object and body) with the same key returns the stored answer and "
        "changes nothing; the key sent with any other request is refused, 422 idempotency_key_reused. The workflow "
        "update id is `api:<key>`, apart from the platform's own update ids."))] = None,
) -> str:
    """Required on every action: one key names one request (the same request again: the same
    answer; another request: 422 `idempotency_key_reused`). Its workflow update id is `api:<key>`
    (subsidy.contracts.workflow_ids.api_update_id), never one of the platform's own."""
    if key is None or not key.strip():
        raise ApiError(400, "idempotency_key_required", "缺少 Idempotency-Key 请求头：每项操作须带一个唯一的幂等键")
    key = key.strip()
    if not IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key 格式不正确（8-128 位字母、数字或 ._:-）")
    return key


def request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or str(uuid.uuid4())


def decisions(resources: Any) -> DecisionService:
    settings = resources.settings
    return DecisionService(resources.pool, resources.temporal,
                           busy_window=getattr(settings, "decision_busy_window_seconds", 15.0))
