"""The watermarked application form: a PDF written by ReportLab with its Chinese font embedded, the
same bytes for the same facts, the form id on every page (diagonal watermark), title and watermark
from the program's configuration, amounts from integer fen, no people in it.

Checked with poppler's tools as a reader would: `pdffonts` (embedded), `pdftotext` (the Chinese
comes back), `pdftoppm` (a page rendered to PNG under .run/screenshots/pdf/, to be looked at)."""

from __future__ import annotations

import base64
import re
import subprocess
import zlib
from pathlib import Path

from services.review.forms.documents import FORM_ID, form_id_of, form_lines, render_form, yuan
from tests.fixtures import events

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".run" / "screenshots" / "pdf"


def facts() -> dict:
    payload = events.longgang_submitted()
    payload["applicant"] = {k: v for k, v in payload["applicant"].items() if k not in ("legal_representative", "contact")}
    return payload


def page_contents(pdf: bytes) -> list[bytes]:
    """The decoded content streams of the pages (ReportLab writes them ASCII85 + Flate)."""
    streams = re.findall(rb"/Filter \[ /ASCII85Decode /FlateDecode \].*?stream\r?\n(.*?)~>", pdf, re.S)
    return [zlib.decompress(base64.a85decode(s)) for s in streams]


def poppler(tool: str, pdf: bytes, tmp_path: Path, *args: str) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run([tool, *args, str(path), *(["-"] if tool == "pdftotext" else [])],
                          check=True, capture_output=True, text=True).stdout


def test_the_form_embeds_its_chinese_font_and_no_other(tmp_path: Path) -> None:
    pdf = render_form("LG2025-000123", 1, facts(), form_id_of("LG2025-000123", 1))
    assert pdf.startswith(b"%PDF-")
    fonts = poppler("pdffonts", pdf, tmp_path).splitlines()[2:]
    assert len(fonts) == 1 and "WenQuanYiMicroHei" in fonts[0] and "TrueType" in fonts[0]
    assert fonts[0].split()[-5:-2] == ["yes", "yes", "yes"]  # emb sub uni


def test_the_chinese_text_is_extractable_and_the_title_comes_from_the_configuration(tmp_path: Path) -> None:
    text = poppler("pdftotext", render_form("LG2025-000123", 1, facts(), "WF-LG2025-000123-V1"), tmp_path)
    assert "2025年龙岗区调用模型开发应用扶持项目申报书" in text
    assert "申报编号：LG2025-000123（第1版）" in text and "合同金额 1,500,000.00 元" in text
    sz = poppler("pdftotext", render_form("SZ2025-000001", 1, facts(), "WF-SZ2025-000001-V1", program="SZ-GOVAI-SCENARIO-2025"), tmp_path)
    assert "深圳市政务人工智能开放场景应用专项资金申请书" in sz and "SZ2025-000001" in sz  # its watermark: the application no


def test_the_same_facts_give_the_same_bytes_and_another_version_another_form() -> None:
    one = render_form("LG2025-000123", 1, facts(), "WF-LG2025-000123-V1")
    assert one == render_form("LG2025-000123", 1, facts(), "WF-LG2025-000123-V1")
    assert one != render_form("LG2025-000123", 2, facts(), "WF-LG2025-000123-V2")


def test_the_form_id_is_the_watermark_of_every_page_and_a_page_renders(tmp_path: Path) -> None:
    many = facts()
    many["materials"] = [dict(many["materials"][0], file_id=f"f-{i}") for i in range(60)]  # two pages
    pdf = render_form("LG2025-000123", 1, many, "WF-LG2025-000123-V1")
    assert "Pages:           2" in poppler("pdfinfo", pdf, tmp_path)
    pages = page_contents(pdf)
    assert len(pages) == 2
    for content in pages:  # the diagonal watermark, repeated: rotated 45 degrees, then the form id
        assert len(re.findall(rb".707107 .707107 -0?.707107 .707107 [0-9.]+ [0-9.]+ cm\nBT [^\n]*\(WF-LG2025-000123-V1\) Tj", content)) >= 8
    assert FORM_ID.match("WF-LG2025-000123-V1") and not FORM_ID.match("../etc/passwd")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (tmp_path / "form.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "2", str(tmp_path / "form.pdf"), str(SCREENSHOTS / "form")], check=True)
    assert (SCREENSHOTS / "form-1.png").stat().st_size > 10_000


def test_what_the_form_says() -> None:
    lines = form_lines("LG2025-000123", 1, facts())
    text = "\n".join(lines)
    assert "申报编号：LG2025-000123（第1版）" in lines
    assert "合同金额 1,500,000.00 元" in text and "网信办备案号 Guangdong-ShiLi-20240101" in text
    assert "营业执照（f-01，1 页）" in text
    assert all(name not in text for name in ("张三", "李四")) and all(v not in text for v in events.PERSONAL_VALUES)


def test_yuan_from_fen() -> None:
    assert (yuan(150000000), yuan(5), yuan(123456), yuan(0)) == ("1,500,000.00 元", "0.05 元", "1,234.56 元", "0.00 元")
