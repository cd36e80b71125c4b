"""`GET /forms/{form_id}`: the watermarked form as issued, for officials of its program (bearer
token), `application/pdf` with its SHA-256 in `X-Content-SHA256`. The enterprise gets its form
through the portal, not from here."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from services.review import repository
from services.review.forms.documents import FORM_ID
from subsidy.identity.http import Authenticated
from subsidy.web import ApiError, Started


def router() -> APIRouter:
    api = APIRouter(tags=["forms"])

    @api.get(
        "/forms/{form_id:path}",  # any path below, so a traversal attempt is answered 400, not routed
        summary="A watermarked application form (PDF), for officials of its program",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}, 404: {"description": "unknown, or of another program"}},
    )
    async def form(form_id: str, principal: Authenticated, resources: Started) -> Response:
        if not FORM_ID.match(form_id):
            raise ApiError(400, "bad_form_id", "表单编号格式不正确")
        async with resources.pool.acquire() as conn:
            row = await repository.form(conn, form_id)
        if row is None or not principal.in_program(row["program"]):
            raise ApiError(404, "unknown_form", "未找到该申报书", detail={"form_id": form_id})
        return Response(
            bytes(row["pdf"]),
            media_type="application/pdf",
            headers={
                "content-disposition": f'attachment; filename="{form_id}.pdf"',
                "x-content-sha256": row["sha256"],
            },
        )

    return api
