"""The watermarked application form (带水印的申报书, DESIGN.md LG lifecycle step 4): a PDF issued
once the online review approves, downloaded by the enterprise, uploaded to the Guangdong portal
(which sends back its form id and SHA-256, checked by the workflow) and brought on paper.

- `render_form` writes the PDF: one A4 page per 40 lines, the version's facts (no people in them),
  and the form id as a diagonal watermark on every page. Fonts are the standard Chinese font
  STSong-Light (Adobe-GB1, UniGB-UCS2-H), which PDF readers provide: nothing is embedded, and the
  bytes depend only on the facts and the form id, so a retried activity issues the same file.
- `FormActivities.issue_watermarked_form` (task queue `subsidy-review`) renders and stores it in
  `review.forms`; the form id is derived from the application and version (`WF-LG2025-000123-V1`).
- `forms/api.py` serves it to officials: `GET /forms/{form_id}` on review's port (bearer token of the
  form's program), `application/pdf` with its SHA-256 in `X-Content-SHA256`. The enterprise gets
  its form through the portal, not from here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from temporalio import activity

from services.review import repository
from services.review.rules.activities import recorded_facts
from services.review.rules.longgang import MATERIAL_NAMES
from subsidy.contracts.lifecycle import ACTIVITY_ISSUE_WATERMARKED_FORM, IssueWatermarkedForm, WatermarkedForm
from subsidy.programs import programs
from subsidy.programs.batch import Form

log = structlog.get_logger(__name__)

PREFIX = "/forms/"
FORM_ID = re.compile(r"^WF-[A-Za-z0-9_-]{1,64}-V[0-9]{1,4}$")
TITLE = "2025年龙岗区调用模型开发应用扶持项目申报书"
A4 = (595, 842)  # points
LINES_PER_PAGE = 40
FOOTER = "本申报书由平台生成并带水印。请用A4纸双面打印，按顺序胶装成册，封面加盖公章并盖骑缝章，一式两份。"


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


def _hex(text: str) -> str:
    """A PDF string in UniGB-UCS2-H: UCS-2 big-endian code units, as hex (BMP only; others as '?')."""
    return "<" + "".join(f"{ord(ch) if ord(ch) <= 0xFFFF else 0x3F:04X}" for ch in text) + ">"


@dataclass(frozen=True)
class FormTexts:
    """The printed texts: the batch's `[form]` (title, watermark, footer; placeholders {form_id},
    {application_no}, {program}), or the 2025 Longgang texts when the batch gives none."""

    title: str = TITLE
    watermark: str = "龙岗区调用模型扶持 {form_id}"
    footer: str = FOOTER

    @classmethod
    def of(cls, form: Form | None, *, form_id: str, application_no: str, program: str) -> FormTexts:
        source = form or cls()
        values = {"form_id": form_id, "application_no": application_no, "program": program}
        return cls(title=source.title.format(**values), watermark=source.watermark.format(**values),
                   footer=source.footer.format(**values))


def _page_content(lines: Sequence[str], form_id: str, page: int, pages: int, texts: FormTexts | None = None) -> bytes:
    texts = texts or FormTexts(watermark=FormTexts.watermark.format(form_id=form_id))
    width, height = A4
    ops = ["q /GS1 gs 0.55 g"]  # the watermark: light, diagonal, across the page
    for y in range(80, height, 170):
        for x in (-40, 260):
            ops.append(f"BT /F1 22 Tf 0.7071 0.7071 -0.7071 0.7071 {x} {y} Tm {_hex(texts.watermark)} Tj ET")
    ops.append("Q")
    ops.append(f"BT /F1 16 Tf 72 {height - 60} Td {_hex(texts.title)} Tj ET")
    ops.append(f"BT /F1 9 Tf 72 {height - 80} Td {_hex('表单编号（水印）：' + form_id)} Tj ET")
    y = height - 110
    for line in lines:
        ops.append(f"BT /F1 10.5 Tf 72 {y} Td {_hex(line)} Tj ET")
        y -= 16
    ops.append(f"BT /F1 8 Tf 72 40 Td {_hex(texts.footer)} Tj ET")
    ops.append(f"BT /F1 8 Tf {width - 110} 24 Td {_hex(f'第 {page} 页 / 共 {pages} 页')} Tj ET")
    return "\n".join(ops).encode("ascii")


def render_form(application_no: str, version: int, facts: dict[str, Any], form_id: str,
                texts: FormTexts | None = None) -> bytes:
    """The form as PDF bytes: deterministic for the same facts, form id and texts."""
    lines = form_lines(application_no, version, facts)
    chunks = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    first_page = 6  # objects 1-5 are the catalog, the page tree, the fonts and the transparency
    page_ids = [first_page + 2 * i for i in range(len(chunks))]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {len(chunks)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [4 0 R] >>",
        4: b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light"
           b" /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor 5 0 R /DW 1000 /W [1 95 500] >>",  # ASCII half width
        5: b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880]"
           b" /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    }
    resources = f"<< /Font << /F1 3 0 R >> /ExtGState << /GS1 {first_page + 2 * len(chunks)} 0 R >> >>"
    for number, (page_id, chunk) in enumerate(zip(page_ids, chunks, strict=True), start=1):
        content = _page_content(chunk, form_id, number, len(chunks), texts)
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {A4[0]} {A4[1]}] /Resources {resources}"
            f" /Contents {page_id + 1} 0 R >>"
        ).encode()
        objects[page_id + 1] = f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"
    objects[first_page + 2 * len(chunks)] = b"<< /Type /ExtGState /ca 0.18 /CA 0.18 >>"

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offsets[n]:010d} 00000 n \n".encode() for n in range(1, size))
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


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
            batch = programs().get(request.program)
            texts = FormTexts.of(batch.form if batch is not None else None, form_id=form_id,
                                 application_no=request.application_no, program=request.program)
            pdf = render_form(request.application_no, request.version, facts, form_id, texts)
            digest = hashlib.sha256(pdf).hexdigest()
            stored = await repository.store_form(conn, form_id, request.program, request.application_no, request.version,
                                                 digest, pdf)
        log.info("form issued", version=request.version, form_id=form_id)
        return WatermarkedForm(form_id=form_id, sha256=stored)  # the first issue's hash, if issued before
