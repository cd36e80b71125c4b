"""`GET /api/tasks`: the caller's open tasks (待办), or with `closed=true` the ones the caller closed (已办)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query

from services.review import repository
from services.review.api.access import Action, PERMISSIONS
from services.review.api.common import local, weekday
from services.review.tasks.steps import STEP_NAMES_ZH, Step
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started

MAX_PAGE_SIZE = 100


def task_item(row: Any, now: datetime) -> dict[str, Any]:
    item = {
        "task_id": row["id"],
        "application_no": row["application_no"],
        "program": row["program"],
        "step": row["step"],
        "step_name": STEP_NAMES_ZH[Step(row["step"])],
        "role": row["role"],
        "assignee": row["assignee"],
        "since": local(row["opened_at"]),
        "deadline": local(row["deadline"]),
        "deadline_weekday": weekday(row["deadline"]),
        "overdue": row["deadline"] is not None and row["closed_at"] is None and row["deadline"] < now,
    }
    if row["closed_at"] is not None:
        item.update(closed_at=local(row["closed_at"]), closed_by=row["closed_by"], closed_to_status=row["closed_to_status"])
    return item


def router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["tasks"])

    @api.get("/tasks", summary="The caller's open tasks (待办), or those the caller closed (已办, closed=true)",
             responses={401: {"description": "no or invalid token"}})
    async def tasks(
        principal: Authenticated,
        resources: Started,
        program: str | None = Query(None, description="only this program's tasks"),
        step: Step | None = Query(None, description="only this step"),
        overdue: bool | None = Query(None, description="true: past their deadline; false: not"),
        closed: bool = Query(False, description="true: the tasks the caller closed (已办)"),
        sort: Literal["deadline", "age"] = Query("deadline", description="deadline first, or oldest first"),
        page: int = Query(1, ge=1, le=100_000),
        page_size: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
    ) -> dict[str, Any]:
        roles = [r.value for r in principal.roles if Action.VIEW_TASKS in PERMISSIONS[r]]
        programs = sorted(principal.programs)
        if not roles:
            raise ApiError(403, "forbidden", "您的角色无权查看待办")
        now = datetime.now(UTC)
        query = repository.TaskQuery(
            programs=programs, roles=roles, subject=principal.subject, actor_id=principal.actor_id,
            program=program, step=step.value if step else None, overdue=overdue, closed=closed, sort=sort,
            limit=page_size, offset=(page - 1) * page_size,
        )
        async with resources.pool.acquire() as conn:
            total, rows = await repository.list_tasks(conn, query, now)
        return {"total": total, "page": page, "page_size": page_size, "items": [task_item(r, now) for r in rows]}

    return api
