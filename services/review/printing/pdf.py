"""PDFs that print the same on any computer: ReportLab, the Chinese font embedded (a subset of
WenQuanYi Micro Hei, TrueType, installed from Debian's `fonts-wqy-microhei` by
deploy/install/system-packages.sh), and `invariant=1` so the same facts give the same bytes (no
creation time, no random document id).

The standard PDF fonts (Helvetica) are never used: the canvas starts in the Chinese font, so
`pdffonts` lists one font, embedded.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "WQYMicroHei"
# Where Debian puts it; SUBSIDY_CJK_FONT names another TrueType (.ttf/.ttc, subfont 0) font file.
DEFAULT_FONT_FILE = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


class FontMissing(RuntimeError):
    """The Chinese font file is not installed (run deploy/install/system-packages.sh)."""


@cache
def chinese_font() -> str:
    """Register the embedded Chinese font once; its ReportLab name."""
    path = Path(os.environ.get("SUBSIDY_CJK_FONT", DEFAULT_FONT_FILE))
    if not path.is_file():
        raise FontMissing(f"Chinese font not found at {path}: install fonts-wqy-microhei (deploy/install/system-packages.sh)")
    pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
    return FONT


def new_canvas(out: io.BytesIO, *, title: str) -> pdfcanvas.Canvas:
    font = chinese_font()
    c = pdfcanvas.Canvas(out, pagesize=A4, invariant=1, initialFontName=font, initialFontSize=10)
    c.setTitle(title)
    c.setCreator("subsidy platform")
    c.setProducer("subsidy platform")
    return c


def diagonal_watermark(c: pdfcanvas.Canvas, text: str) -> None:
    """The watermark across the page: light grey, at 45 degrees, repeated so a cut-out page keeps it."""
    width, height = A4
    c.saveState()
    c.setFillColor(colors.Color(0.45, 0.45, 0.45, alpha=0.18))
    c.setFont(FONT, 22)
    for y in range(80, int(height), 170):
        for x in (30, 310):
            c.saveState()
            c.translate(x, y)
            c.rotate(45)
            c.drawString(0, 0, text)
            c.restoreState()
    c.restoreState()


def fit_lines(text: str, font_size: float, width: float) -> list[str]:
    """Break a line of (mostly Chinese) text into pieces no wider than `width` points."""
    font = chinese_font()
    pieces, current = [], ""
    for ch in text:
        if current and pdfmetrics.stringWidth(current + ch, font, font_size) > width:
            pieces.append(current)
            current = ch
        else:
            current += ch
    return [*pieces, current]


class _ChineseCanvas(pdfcanvas.Canvas):
    """Platypus' canvas, started in the Chinese font (no Helvetica in the file)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["initialFontName"] = chinese_font()
        kwargs["initialFontSize"] = 10
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


# --- a table document (the notice lists) ------------------------------------------------------------


@dataclass(frozen=True)
class TableDocument:
    title: str
    subtitle_lines: Sequence[str]
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    footer_row: Sequence[str]
    col_widths_mm: Sequence[float]
    numeric_columns: frozenset[int] = frozenset()
    closing_lines: Sequence[str] = ()


def render_table_document(doc: TableDocument) -> bytes:
    font = chinese_font()
    out = io.BytesIO()
    template = SimpleDocTemplate(
        out, pagesize=A4, invariant=1, title=doc.title, creator="subsidy platform", producer="subsidy platform",
        leftMargin=15 * mm, rightMargin=15 * mm, topMargin=18 * mm, bottomMargin=18 * mm,
    )
    title = ParagraphStyle("title", fontName=font, fontSize=15, leading=22, alignment=1, wordWrap="CJK", spaceAfter=4 * mm)
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, wordWrap="CJK", alignment=TA_LEFT)
    cell = ParagraphStyle("cell", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    number = ParagraphStyle("number", parent=cell, alignment=TA_RIGHT)
    head = ParagraphStyle("head", parent=cell, fontSize=9.5)

    def row(values: Sequence[str], style: ParagraphStyle = cell) -> list[Paragraph]:
        return [Paragraph(_escape(v), number if i in doc.numeric_columns and style is cell else style) for i, v in enumerate(values)]

    data = [row(doc.header, head), *(row(r) for r in doc.rows), row(doc.footer_row)]
    table = Table(data, colWidths=[w * mm for w in doc.col_widths_mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("BACKGROUND", (0, -1), (-1, -1), colors.Color(0.95, 0.95, 0.95)),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    story = [Paragraph(_escape(doc.title), title)]
    story += [Paragraph(_escape(line), body) for line in doc.subtitle_lines]
    story += [Spacer(1, 4 * mm), table, Spacer(1, 4 * mm)]
    story += [Paragraph(_escape(line), body) for line in doc.closing_lines]

    def page_number(c: pdfcanvas.Canvas, d: SimpleDocTemplate) -> None:
        c.saveState()
        c.setFont(font, 8)
        c.drawRightString(A4[0] - 15 * mm, 10 * mm, f"第 {d.page} 页")
        c.restoreState()

    template.build(story, onFirstPage=page_number, onLaterPages=page_number, canvasmaker=_ChineseCanvas)
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
