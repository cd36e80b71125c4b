"""The watermarked application form: a well-formed PDF, the same bytes for the same facts, the form
id on every page, amounts from integer fen, no people in it."""

from __future__ import annotations

import re

from services.review.forms.documents import FORM_ID, form_id_of, form_lines, render_form, yuan
from tests.fixtures import events


def facts() -> dict:
    payload = events.longgang_submitted()
    payload["applicant"] = {k: v for k, v in payload["applicant"].items() if k not in ("legal_representative", "contact")}
    return payload


def ucs2(text: str) -> bytes:
    return "".join(f"{ord(ch):04X}" for ch in text).encode()


def objects_at_their_xref_offsets(pdf: bytes) -> bool:
    xref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf).group(1))  # type: ignore[union-attr]
    table = pdf[xref:].split(b"trailer")[0].split(b"\n")
    count = int(table[1].split()[1])
    entries = table[3:3 + count - 1]  # after "xref", "0 N" and the free entry
    return all(pdf[int(e.split()[0]):].startswith(f"{n} 0 obj".encode()) for n, e in enumerate(entries, start=1))


def test_the_form_is_a_pdf_whose_cross_reference_points_at_its_objects() -> None:
    pdf = render_form("LG2025-000123", 1, facts(), form_id_of("LG2025-000123", 1))
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    assert objects_at_their_xref_offsets(pdf)
    assert b"/BaseFont /STSong-Light /Encoding /UniGB-UCS2-H" in pdf


def test_the_same_facts_give_the_same_bytes_and_another_version_another_form() -> None:
    one = render_form("LG2025-000123", 1, facts(), "WF-LG2025-000123-V1")
    assert one == render_form("LG2025-000123", 1, facts(), "WF-LG2025-000123-V1")
    assert one != render_form("LG2025-000123", 2, facts(), "WF-LG2025-000123-V2")


def test_the_form_id_is_the_watermark_of_every_page() -> None:
    many = facts()
    many["materials"] = [dict(many["materials"][0], file_id=f"f-{i}") for i in range(60)]  # two pages
    pdf = render_form("LG2025-000123", 1, many, "WF-LG2025-000123-V1")
    assert pdf.count(b"/Type /Page ") == 2
    assert pdf.count(ucs2("龙岗区调用模型扶持 WF-LG2025-000123-V1")) >= 2 * 8
    assert FORM_ID.match("WF-LG2025-000123-V1") and not FORM_ID.match("../etc/passwd")


def test_what_the_form_says() -> None:
    lines = form_lines("LG2025-000123", 1, facts())
    text = "\n".join(lines)
    assert "申报编号：LG2025-000123（第1版）" in lines
    assert "合同金额 1,500,000.00 元" in text and "网信办备案号 Guangdong-ShiLi-20240101" in text
    assert "营业执照（f-01，1 页）" in text
    assert all(name not in text for name in ("张三", "李四")) and all(v not in text for v in events.PERSONAL_VALUES)


def test_yuan_from_fen() -> None:
    assert (yuan(150000000), yuan(5), yuan(123456), yuan(0)) == ("1,500,000.00 元", "0.05 元", "1,234.56 元", "0.00 元")
