"""What the console's administrator and auditor pages read besides tasks and applications:

    GET /api/programs/{program}/dashboard   applications by state, open and overdue tasks by step,
                                            deadlines today / this week (Asia/Shanghai), awards
    GET /api/audit/verify                   the audit chain walked now: intact, rows, first bad row
    GET /api/programs/{program}/experts     the expert registry the panel is chosen from (administrators)
    GET /api/programs/{program}/officials   officials who have acted in the program with a role (whom a
                                            task of that role may be given to; administrators)
    GET /api/applications                   the applications of the caller's programs, newest first
                                            (program, status, application_no filters; administrators and auditors)

Program administrators and auditors of the program see its dashboard (others of the program 403,
another program 404); only auditors verify the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Query

from services.review import repository
from services.review.api.access import in_scope
from services.review.api.common import SHANGHAI, local
from subsidy.identity.claims import StaffRole
from subsidy.programs import programs
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started

DASHBOARD_ROLES = (StaffRole.PROGRAM_ADMIN, StaffRole.AUDITOR)


def router() -> APIRouter:
    api = APIRouter(prefix="/api", tags=["dashboard"])

    @api.get("/programs/{program}/dashboard", summary="A program at a glance (administrators, auditors)")
    async def dashboard(program: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        if not in_scope(principal, program):
            raise ApiError(404, "program_not_found", "未找到该项目")
        if not principal.any_of(DASHBOARD_ROLES):
            raise ApiError(403, "forbidden", "只有项目管理员和审计人员可以查看工作台")
        now = datetime.now(UTC)
        today = now.astimezone(SHANGHAI).date()
        tomorrow = datetime.combine(today + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        next_monday = datetime.combine(today + timedelta(days=7 - today.weekday()), time(0), tzinfo=SHANGHAI)
        async with resources.pool.acquire() as conn:
            board = await repository.program_dashboard(conn, program, now=now, today_end=tomorrow, week_end=next_monday)
        steps = board["tasks_by_step"]
        return {
            "program": program,
            "as_of": local(now),
            "applications_by_status": board["applications_by_status"],
            "open_tasks": sum(s["open"] for s in steps.values()),
            "open_tasks_by_step": {step: {"open": s["open"], "overdue": s["overdue"]} for step, s in steps.items()},
            "overdue_tasks": sum(s["overdue"] for s in steps.values()),
            "deadlines_today": sum(s["due_today"] for s in steps.values()),
            "deadlines_this_week": sum(s["due_this_week"] for s in steps.values()),
            "awards": {"count": board["awards_count"], "total_fen": board["awards_total_fen"], "budget_fen": _budget_fen(program)},
        }

    @api.get("/programs/{program}/experts", summary="The expert registry a panel is chosen from (administrators, auditors)")
    async def experts(program: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        if not in_scope(principal, program):
            raise ApiError(404, "program_not_found", "未找到该项目")
        if not principal.any_of(DASHBOARD_ROLES):
            raise ApiError(403, "forbidden", "只有项目管理员和审计人员可以查看专家库")
        async with resources.pool.acquire() as conn:
            rows = await repository.registered_experts(conn)
        return {"program": program, "experts": [
            {"expert": r["expert_id"], "name": r["name"], "organisation": r["organisation"], "fields": r["fields"]} for r in rows]}

    @api.get("/programs/{program}/officials", summary="Officials who have acted in the program with a role (administrators)")
    async def officials(program: str, role: StaffRole, principal: Authenticated, resources: Started) -> dict[str, Any]:
        if not in_scope(principal, program):
            raise ApiError(404, "program_not_found", "未找到该项目")
        if not principal.has(StaffRole.PROGRAM_ADMIN):
            raise ApiError(403, "forbidden", "只有项目管理员可以转派待办")
        async with resources.pool.acquire() as conn:
            rows = await repository.officials_of(conn, program, role.value)
        return {"program": program, "role": role.value, "officials": [
            {"subject": r["subject"], "last_acted_at": local(r["last_acted_at"]), "decisions": r["decisions"]} for r in rows]}

    @api.get("/applications", summary="The applications of the caller's programs (administrators, auditors)")
    async def applications(principal: Authenticated, resources: Started, program: str | None = None,
                           status: str | None = None, application_no: str | None = None,
                           limit: int = Query(500, ge=1, le=10_000)) -> dict[str, Any]:
        if not principal.any_of(DASHBOARD_ROLES):
            raise ApiError(403, "forbidden", "只有项目管理员和审计人员可以查看申报列表")
        if program is not None and not in_scope(principal, program):
            raise ApiError(404, "program_not_found", "未找到该项目")
        async with resources.pool.acquire() as conn:
            rows = await repository.applications_for_export(conn, sorted(principal.programs), program, status, limit,
                                                            newest_first=True, application_no=application_no or None)
        return {"items": [{"application_no": r["application_no"], "program": r["program"], "status": r["status"],
                           "version": r["version"], "deadline": local(r["deadline"]), "status_since": local(r["status_since"]),
                           "enterprise_name": r["enterprise_name"]} for r in rows]}

    @api.get("/audit/verify", summary="Walk the audit log's hash chain now (auditors)")
    async def verify(principal: Authenticated, resources: Started) -> dict[str, Any]:
        from services.review.audit.chain import verify_chain

        if not principal.has(StaffRole.AUDITOR):
            raise ApiError(403, "forbidden", "只有审计人员可以校验审计链")
        async with resources.pool.acquire() as conn:
            report = await verify_chain(conn)
        return {"intact": report.intact, "count": report.count, "first_bad_seq": report.first_bad_seq,
                "reason": report.reason, "checked_at": local(datetime.now(UTC))}

    return api


def _budget_fen(program: str) -> int | None:
    """The batch's budget (Longgang `[award] budget_fen`, Shenzhen `[scoring] budget_fen`), None when
    it has none: the dashboard's awards are those recorded (after 按比例核减, the revised amounts)
    against it."""
    batch = programs().get(program)
    if batch is None:
        return None
    for section in (batch.award, batch.scoring):
        if section is not None and getattr(section, "budget_fen", None) is not None:
            return int(section.budget_fen)
    return None
