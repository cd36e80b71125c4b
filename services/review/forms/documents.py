"""The watermarked application form (带水印的申报书, DESIGN.md LG lifecycle step 4): a PDF issued
once the online review approves, downloaded by the enterprise, uploaded to the Guangdong portal
(which sends back its form id and SHA-256, checked by the workflow) and brought on paper.

- `render_form` writes the PDF with ReportLab (services/review/printing/pdf.py): one A4 page per 40
  lines, the version's facts (no people in them), the program's `[form]` title, footer and
  watermark (the form id, diagonal, on every page). The Chinese font (WenQuanYi Micro Hei) is
  embedded as a subset, so the form prints the same on a computer without Chinese fonts; the
  canvas is `invariant`, so the bytes depend only on the facts and the form id and a retried
  activity issues the same file (same SHA-256).
- `FormActivities.issue_watermarked_form` (task queue `subsidy-review`) renders and stores it in
  `review.forms`; the form id is derived from the application and version (`WF-LG2025-000123-V1`).
- `forms/api.py` serves it to officials: `GET /forms/{form_id}` on review's port (bearer token of the
  form's program), `application/pdf` with its SHA-256 in `X-Content-SHA256`. The enterprise gets
  its form through the portal, not from here.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import structlog
from reportlab.lib.pagesizes import A4
from temporalio import activity

from services.review import repository
from services.review.rules.activities import recorded_facts
from services.review.printing.pdf import FONT, diagonal_watermark, fit_lines, new_canvas
from services.review.rules.longgang import MATERIAL_NAMES
from subsidy.programs import programs
from subsidy.contracts.lifecycle import ACTIVITY_ISSUE_WATERMARKED_FORM, IssueWatermarkedForm, WatermarkedForm

log = structlog.get_logger(__name__)

PREFIX = "/forms/"
FORM_ID = re.compile(r"^WF-[A-Za-z0-9_-]{1,64}-V[0-9]{1,4}$")
LONGGANG = "LG-AI-MODEL-2025"
LINES_PER_PAGE = 40


def form_id_of(application_no: str, version: int) -> str:
    return f"WF-{application_no}-V{version}"


def yuan(fen: int) -> str:
    """Integer fen as yuan for people: 150000000 -> '1,500,000.00 元'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d} 元"


def form_lines(application_no: str, version: int, facts: dict[str, Any]) -> list[str]:
    """What the form says, line by line (Chinese: the enterprise and the officials read it)."""
    applicant = facts.get("applicant", {})
    lines = [
        f"申报编号：{application_no}（第{version}版）",
        f"申报单位：{applicant.get('name', '')}",
        f"统一社会信用代码：{applicant.get('uscc', '')}",
        f"行业代码：{applicant.get('industry_code', '')}",
        f"注册地：{applicant.get('registered_district', '')}",
        f"实际经营地址：{applicant.get('operating_address', '')}",
        f"分支机构：{'是（总部 ' + str(applicant.get('head_office_uscc') or '') + '）' if applicant.get('is_branch') else '否'}",
        "",
        "模型服务合同：",
    ]
    for contract in facts.get("model_contracts") or ():
        assessment = contract.get("security_assessment") or {}
        basis = (
            f"网信办备案号 {contract['cac_filing_no']}" if contract.get("cac_filing_no")
            else f"等级保护测评 {assessment.get('level', '')} 级，证书 {assessment.get('certificate_no', '')}"
        )
        lines += [
            f"  合同编号 {contract.get('contract_no', '')}，模型 {contract.get('model_name', '')}",
            f"  供给方 {contract.get('supplier_name', '')}（{contract.get('supplier_uscc', '')}）",
            f"  {basis}",
            f"  签订 {contract.get('signed_on', '')}，完成 {contract.get('completed_on', '')}，"
            f"合同金额 {yuan(int(contract.get('amount_fen') or 0))}",
        ]
    lines += ["", "申报材料："]
    lines += [
        f"  {MATERIAL_NAMES.get(m.get('kind', ''), m.get('kind', ''))}（{m.get('file_id', '')}，{m.get('pages') or '-'} 页）"
        for m in facts.get("materials") or ()
    ]
    declarations = facts.get("declarations", {})
    lines += [
        "",
        "申报单位声明：",
        f"  未被列入严重失信主体名单：{'否' if declarations.get('serious_dishonesty_listed') else '是'}",
        f"  同一事项未申报其他区级专项资金：{'否' if declarations.get('other_district_funds_for_same_item') else '是'}",
    ]
    return lines


def render_form(application_no: str, version: int, facts: dict[str, Any], form_id: str, *, program: str = LONGGANG) -> bytes:
    """The form as PDF bytes (ReportLab, the Chinese font embedded): the same bytes for the same
    facts and form id. Title, watermark and footer come from the program's `[form]` configuration;
    the watermark is on every page, diagonal."""
    form = programs()[program].form
    names = {"form_id": form_id, "application_no": application_no, "program": program}
    title, watermark, footer = (text.format(**names) for text in (form.title, form.watermark, form.footer))
    width, height = A4
    lines = [piece for line in form_lines(application_no, version, facts) for piece in fit_lines(line, 10.5, width - 144)]
    chunks = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    out = io.BytesIO()
    c = new_canvas(out, title=title)
    c.setSubject(form_id)
    for number, chunk in enumerate(chunks, start=1):
        diagonal_watermark(c, watermark)
        c.setFont(FONT, 16)
        c.drawString(72, height - 60, title)
        c.setFont(FONT, 9)
        c.drawString(72, height - 80, "表单编号（水印）：" + form_id)
        c.setFont(FONT, 10.5)
        y = height - 110
        for line in chunk:
            c.drawString(72, y, line)
            y -= 16
        c.setFont(FONT, 8)
        for i, piece in enumerate(fit_lines(footer, 8, width - 144) if footer else []):
            c.drawString(72, 40 - 11 * i, piece)
        c.drawRightString(width - 40, 24, f"第 {number} 页 / 共 {len(chunks)} 页")
        c.showPage()
    c.save()
    return out.getvalue()


class FormActivities:
    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    def all(self) -> Sequence[Callable[..., Any]]:
        return (self.issue_watermarked_form,)

    @activity.defn(name=ACTIVITY_ISSUE_WATERMARKED_FORM)
    async def issue_watermarked_form(self, request: IssueWatermarkedForm) -> WatermarkedForm:
        form_id = form_id_of(request.application_no, request.version)
        async with self._pool.acquire() as conn, conn.transaction():
            _, facts = await recorded_facts(conn, request.application_no, request.version)
            pdf = render_form(request.application_no, request.version, facts, form_id, program=request.program)
            digest = hashlib.sha256(pdf).hexdigest()
            stored = await repository.store_form(conn, form_id, request.program, request.application_no, request.version,
                                                 digest, pdf)
        log.info("form issued", version=request.version, form_id=form_id)
        return WatermarkedForm(form_id=form_id, sha256=stored)  # the first issue's hash, if issued before
