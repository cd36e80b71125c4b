"""HTTP routes of the public notice.

Officials (bearer token; program_admin, auditors read):
- `GET  /api/programs/{program}/notice/preview`   the list the administrator would publish now
- `POST /api/programs/{program}/publication`      (services/review/api/actions.py) publishes it, with its period
- `GET  /api/programs/{program}/notice`           the published lists, their versions and objections (phones masked)
- `GET  /api/programs/{program}/notice/versions/{v}`         a version (JSON); `/diff` against the previous one
- `GET  /api/programs/{program}/notice/versions/{v}.xlsx|.pdf`  exports
- `POST /api/programs/{program}/notice/objections`  the administrator records an objection received by
  letter, phone or in person (same fields and rules as the public form; audited in their name)
- `POST /api/objections/{id}/decision`            uphold (new amount or removal) or dismiss, with a reason (audited)
- `GET  /api/tasks.xlsx`                          the caller's task list as a spreadsheet (same filters as /api/tasks)
- `GET  /api/applications.xlsx`                   the applications of the caller's programs (program, status filters)

Public (no login):
- `GET  /public/notices/{program}`                the current list (HTML, for phones too), with the objection form
- `GET  /public/api/notices/{program}`            the same as JSON
- `POST /public/api/notices/{program}/objections` an objection (JSON); the page's form posts to
  `/public/notices/{program}/objections`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.review import repository
from services.review.api.access import PERMISSIONS, Action, can
from services.review.api.common import request_id
from services.review.api.tasks import task_item
from services.review.notice import public
from services.review.notice.documents import applications_xlsx, notice_pdf, notice_xlsx, tasks_xlsx
from services.review.notice.service import NoticeService, version_view
from services.review.tasks.steps import Step
from subsidy.identity.claims import StaffRole
from subsidy.identity.http import Authenticated
from subsidy.programs import programs
from subsidy.web import ApiError, Started

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_LIMIT = 10_000


def _program(program: str) -> str:
    if program not in programs():
        raise ApiError(404, "program_not_found", "未找到该项目")
    return program


def _service(resources: Any) -> NoticeService:
    return NoticeService(resources.pool, resources.temporal)


def _require(principal: Any, action: Action, program: str) -> None:
    if not can(principal, action, program):
        raise ApiError(404, "program_not_found", "未找到该项目") if not principal.in_program(program) else \
            ApiError(403, "forbidden", "您的角色无权进行此操作")


def _jsonable(view: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(view, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


async def _version(resources: Any, program: str, version: int, notice_id: str | None) -> dict[str, Any]:
    async with resources.pool.acquire() as conn:
        notice = await (repository.notice_list(conn, notice_id) if notice_id else repository.current_notice(conn, program))
        if notice is None or notice["program"] != program:
            raise ApiError(404, "no_notice", "该项目暂无公示名单")
        view = await version_view(conn, notice, version)
    if view is None:
        raise ApiError(404, "version_not_found", "未找到该版本的公示名单")
    return view


def _download(content: bytes, media: str, name: str) -> Response:
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def router() -> APIRouter:
    api = APIRouter(tags=["notice"])

    @api.get("/api/programs/{program}/notice/preview", summary="The list the administrator would publish now (公示预览)")
    async def preview(program: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        _require(principal, Action.VIEW_NOTICE, _program(program))
        return _jsonable(await _service(resources).preview(program))

    @api.get("/api/programs/{program}/notice", summary="Published lists, versions and objections (phones masked)")
    async def notices(program: str, principal: Authenticated, resources: Started) -> dict[str, Any]:
        _require(principal, Action.VIEW_NOTICE, _program(program))
        async with resources.pool.acquire() as conn:
            lists = []
            for row in await repository.notice_lists_of(conn, program):
                versions = await repository.notice_versions(conn, row["notice_id"])
                objections = await repository.objections_of(conn, row["notice_id"])
                lists.append({
                    "notice_id": row["notice_id"], "published_at": row["published_at"],
                    "period_starts_at": row["period_starts_at"], "period_ends_at": row["period_ends_at"],
                    "working_days": row["working_days"], "final_version": row["final_version"],
                    "latest_version": row["latest_version"],
                    "versions": [{"version": v["version"], "created_at": v["created_at"], "reason": v["reason"],
                                  "objection_id": v["objection_id"]} for v in versions],
                    "objections": [{k: o[k] for k in ("id", "application_no", "objector_name", "phone_masked", "organisation",
                                                      "grounds", "filed_at", "status", "decided_at", "decided_by", "decision_reason",
                                                      "new_award_fen", "removed", "resulting_version")} for o in objections],
                })
        return _jsonable({"program": program, "lists": lists})

    @api.get("/api/programs/{program}/notice/versions/{version:int}.xlsx", summary="A list version as XLSX")
    async def version_xlsx(program: str, version: int, principal: Authenticated, resources: Started,
                           notice_id: str | None = None) -> Response:
        _require(principal, Action.VIEW_NOTICE, _program(program))
        view = await _version(resources, program, version, notice_id)
        return _download(notice_xlsx(view), XLSX, f"{view['notice_id']}-v{version}.xlsx")

    @api.get("/api/programs/{program}/notice/versions/{version:int}.pdf", summary="A list version as PDF (Chinese font embedded)")
    async def version_pdf(program: str, version: int, principal: Authenticated, resources: Started,
                          notice_id: str | None = None) -> Response:
        _require(principal, Action.VIEW_NOTICE, _program(program))
        view = await _version(resources, program, version, notice_id)
        return _download(notice_pdf(view), "application/pdf", f"{view['notice_id']}-v{version}.pdf")

    @api.get("/api/programs/{program}/notice/versions/{version:int}/diff", summary="What changed against the previous version")
    async def version_diff(program: str, version: int, principal: Authenticated, resources: Started,
                           notice_id: str | None = None) -> dict[str, Any]:
        _require(principal, Action.VIEW_NOTICE, _program(program))
        view = await _version(resources, program, version, notice_id)
        changes = view.get("changes") or {"added": [], "removed": [], "changed": []}
        return _jsonable({"notice_id": view["notice_id"], "version": version, "previous_version": version - 1 if version > 1 else None,
                          "reason": view.get("version_reason"), **changes})

    @api.get("/api/programs/{program}/notice/versions/{version:int}", summary="A list version (JSON)")
    async def version_json(program: str, version: int, principal: Authenticated, resources: Started,
                           notice_id: str | None = None) -> dict[str, Any]:
        _require(principal, Action.VIEW_NOTICE, _program(program))
        return _jsonable(await _version(resources, program, version, notice_id))

    @api.post("/api/programs/{program}/notice/objections", status_code=201,
              summary="Record an objection received by letter, phone or in person (administrator, audited)")
    async def record_objection(program: str, request: Request, principal: Authenticated, resources: Started) -> dict[str, Any]:
        body = await _json_body(request)
        return await _service(resources).file_objection(_program(program), body, recorded_by=principal,
                                                        request_id=request_id(request))

    @api.post("/api/objections/{objection_id:int}/decision", summary="Uphold or dismiss an objection, with a reason (audited)")
    async def decide(objection_id: int, request: Request, principal: Authenticated, resources: Started) -> dict[str, Any]:
        body = await _json_body(request)
        return _jsonable(await _service(resources).decide(objection_id, principal, body, request_id=request_id(request)))

    @api.get("/api/tasks.xlsx", summary="The caller's tasks (待办, or 已办 with closed=true) as XLSX, same filters as /api/tasks")
    async def tasks_export(
        principal: Authenticated, resources: Started,
        program: str | None = Query(None), step: Step | None = Query(None), overdue: bool | None = Query(None),
        closed: bool = Query(False), sort: Literal["deadline", "age"] = Query("deadline"),
    ) -> Response:
        roles = [r.value for r in principal.roles if Action.VIEW_TASKS in PERMISSIONS[r]]
        if not roles:
            raise ApiError(403, "forbidden", "您的角色无权查看待办")
        now = datetime.now(UTC)
        query = repository.TaskQuery(
            programs=sorted(principal.programs), roles=roles, subject=principal.subject, actor_id=principal.actor_id,
            program=program, step=step.value if step else None, overdue=overdue, closed=closed, sort=sort,
            limit=EXPORT_LIMIT, offset=0,
        )
        async with resources.pool.acquire() as conn:
            _, rows = await repository.list_tasks(conn, query, now)
        title = "已办事项" if closed else "待办事项"
        return _download(tasks_xlsx([task_item(r, now) for r in rows], title=title), XLSX, "tasks.xlsx")

    @api.get("/api/applications.xlsx", summary="The applications of the caller's programs as XLSX (program, status filters)")
    async def applications_export(principal: Authenticated, resources: Started, program: str | None = Query(None),
                                  status: str | None = Query(None)) -> Response:
        if not any(Action.VIEW_APPLICATION in PERMISSIONS[r] for r in principal.roles) or StaffRole.EXPERT in principal.roles:
            raise ApiError(403, "forbidden", "您的角色无权导出申报列表")  # experts see only their assigned applications
        async with resources.pool.acquire() as conn:
            rows = await repository.applications_for_export(conn, sorted(principal.programs), program, status, EXPORT_LIMIT)
        return _download(applications_xlsx([dict(r) for r in rows], title="申报列表"), XLSX, "applications.xlsx")

    # --- public ---------------------------------------------------------------------------------

    async def current_view(resources: Any, program: str) -> dict[str, Any] | None:
        async with resources.pool.acquire() as conn:
            notice = await repository.current_notice(conn, program)
            if notice is None:
                return None
            version = notice["final_version"] or notice["latest_version"]
            return await version_view(conn, notice, version)

    @api.get("/public/api/notices/{program}", tags=["public"], summary="The program's current notice list (no login)")
    async def public_json(program: str, resources: Started) -> dict[str, Any]:
        view = await current_view(resources, _program(program))
        if view is None:
            raise ApiError(404, "no_notice", "该项目暂无公示名单")
        return _jsonable(view)

    @api.get("/public/notices/{program}", tags=["public"], response_class=HTMLResponse,
             summary="The program's current notice list as a page (no login; phones too)")
    async def public_page(program: str, resources: Started) -> HTMLResponse:
        view = await current_view(resources, _program(program))
        return HTMLResponse(public.page(view, program_name=programs()[program].name, program=program))

    @api.post("/public/api/notices/{program}/objections", tags=["public"], status_code=201,
              summary="File an objection (name and phone required; during the notice period)")
    async def public_objection(program: str, request: Request, resources: Started) -> dict[str, Any]:
        return await _service(resources).file_objection(_program(program), await _json_body(request))

    @api.post("/public/notices/{program}/objections", tags=["public"], response_class=HTMLResponse,
              summary="The public page's objection form")
    async def public_form(program: str, request: Request, resources: Started) -> HTMLResponse:
        _program(program)
        fields = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        try:
            await _service(resources).file_objection(program, fields)
            message, status = ("ok", "异议已受理，将由项目管理部门核查处理。"), 200
        except ApiError as refused:
            message, status = ("err", refused.message), refused.status
        view = await current_view(resources, program)
        return HTMLResponse(public.page(view, program_name=programs()[program].name, program=program, message=message),
                            status_code=status)

    return api


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "bad_json", "请求体不是有效的 JSON") from None
