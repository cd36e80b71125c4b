"""`GET /api/audit`: the audit log, for auditors of their programs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from services.review import repository
from services.review.api.access import Action, can
from services.review.api.common import local
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started


def router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["audit"])

    @api.get("/audit", summary="The audit log of the caller's programs (auditors): decisions and refused attempts")
    async def audit(
        principal: Authenticated,
        resources: Started,
        application_no: str | None = Query(None),
        actor: str | None = Query(None, description="the official's subject"),
        action: str | None = Query(None),
        since: datetime | None = Query(None, alias="from", description="from this instant (ISO 8601 with offset)"),
        until: datetime | None = Query(None, alias="to", description="before this instant"),
        page: int = Query(1, ge=1, le=100_000),
        page_size: int = Query(50, ge=1, le=100),
    ) -> dict[str, Any]:
        programs = sorted(p for p in principal.programs if can(principal, Action.READ_AUDIT, p))
        if not programs:
            raise ApiError(403, "forbidden", "只有审计人员可以查看审计日志")
        for moment in (since, until):
            if moment is not None and moment.tzinfo is None:
                raise ApiError(422, "naive_time", "时间须带时区，例如 2026-01-05T09:00:00+08:00")
        query = repository.AuditQuery(programs=programs, application_no=application_no, subject=actor, action=action,
                                      since=since, until=until, limit=page_size, offset=(page - 1) * page_size)
        async with resources.pool.acquire() as conn:
            total, rows = await repository.list_audit(conn, query)
        return {
            "total": total, "page": page, "page_size": page_size,
            "items": [
                {"seq": r["seq"], "occurred_at": local(r["occurred_at"]), "subject": r["subject"], "role": r["role"],
                 "action": r["action"], "program": r["program"], "application_no": r["application_no"],
                 "input": json.loads(r["input"]), "outcome": r["outcome"], "reason": r["reason"],
                 "request_id": r["request_id"], "hash": r["hash"]}
                for r in rows
            ],
        }

    return api
