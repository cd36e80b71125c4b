"""The notice list's exports and public page, from a version's rows: amounts in 元 with two decimals
from integer fen, totals, tiers for Shenzhen, the period; the PDF embeds its Chinese font and gives
the Chinese back, the same bytes twice, and a page rendered to PNG (.run/screenshots/pdf/) to look
at; the XLSX read back with openpyxl; the version difference; phones masked."""

from __future__ import annotations

import io
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl

from services.review.notice import public
from services.review.notice.documents import applications_xlsx, notice_pdf, notice_xlsx, tasks_xlsx
from services.review.notice.entries import diff, list_view, mask_phone, yuan
from services.review.notice.period import notice_period

SH = ZoneInfo("Asia/Shanghai")
SZ = "SZ-GOVAI-SCENARIO-2025"
LG = "LG-AI-MODEL-2025"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".run" / "screenshots" / "pdf"


def rows(n: int = 3) -> list[dict]:
    return [{"application_no": f"SZ2025-00{i:04d}", "enterprise_name": f"深圳市示例第{i}政务智能有限公司",
             "project": "政务智能问答平台" if i % 2 else "基于大模型的市民热线工单自动分派与质检系统（第二期）",
             "tier": (i % 3) + 1, "award_fen": 100_000_000 * ((i % 3) + 1) + i * 12_345} for i in range(1, n + 1)]


def view(program: str = SZ, n: int = 3, version: int = 1, final: bool = False,
         entries: list[dict] | None = None) -> dict:
    v = list_view(program, rows(n) if entries is None else entries)
    v.update(notice_id="GS-SZ-2026-01", version=version, period_starts_at=datetime(2026, 1, 20, 9, tzinfo=SH),
             period_ends_at=datetime(2026, 1, 29, 18, tzinfo=SH), working_days=7, final=final)
    return v


def test_yuan_has_two_decimals_and_totals_add_up() -> None:
    assert (yuan(150_000_000), yuan(5), yuan(0)) == ("1,500,000.00", "0.05", "0.00")
    v = view()
    assert v["total_award_fen"] == sum(r["award_fen"] for r in rows()) and v["total_award_yuan"] == yuan(v["total_award_fen"])
    assert [e["tier_name"] for e in v["entries"]] == ["二档", "三档", "一档"]


def test_the_notice_period_counts_working_days_from_the_configuration() -> None:
    # 2026-01-20 is a Tuesday: Shenzhen 7 working days -> Thursday 01-29, Longgang 5 -> Tuesday 01-27, at 18:00
    start = datetime(2026, 1, 20, 9, tzinfo=SH)
    sz, lg = notice_period(SZ, start), notice_period(LG, start)
    assert (sz.working_days, sz.ends_at) == (7, datetime(2026, 1, 29, 18, tzinfo=SH))
    assert (lg.working_days, lg.ends_at) == (5, datetime(2026, 1, 27, 18, tzinfo=SH))


def test_the_pdf_embeds_its_font_gives_the_chinese_back_and_is_the_same_twice(tmp_path: Path) -> None:
    pdf = notice_pdf(view(n=40))
    assert pdf == notice_pdf(view(n=40))
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout.splitlines()[2:]
    assert len(fonts) == 1 and "WenQuanYiMicroHei" in fonts[0] and fonts[0].split()[-5:-2] == ["yes", "yes", "yes"]
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    assert "深圳市政务人工智能开放场景应用专项补贴拟资助名单公示" in text.replace(" ", "") or "拟资助名单公示" in text
    assert "公示期：2026年01月20日 09:00 至 2026年01月29日 18:00（7个工作日）" in text
    assert "深圳市示例第1政务智能有限公司" in text and "二档" in text and view(n=40)["total_award_yuan"] in text  # one line: wide enough
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(path), str(SCREENSHOTS / "notice-sz")], check=True)
    lg = tmp_path / "lg.pdf"
    lg.write_bytes(notice_pdf(view(LG, n=3, version=2, final=True)))
    subprocess.run(["pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "1", str(lg), str(SCREENSHOTS / "notice-lg")], check=True)
    assert (SCREENSHOTS / "notice-sz-1.png").stat().st_size > 10_000


def test_the_xlsx_reads_back_with_amounts_tiers_and_totals() -> None:
    v = view()
    book = openpyxl.load_workbook(io.BytesIO(notice_xlsx(v)))
    sheet = book.active
    assert sheet.title == "公示名单第1版"
    assert sheet["A1"].value == "深圳市政务人工智能开放场景应用专项补贴拟资助名单公示"
    assert "公示期：2026年01月20日 09:00 至 2026年01月29日 18:00（7个工作日）" == sheet["A3"].value
    assert [c.value for c in sheet[5]] == ["序号", "申报编号", "企业名称", "项目/产品", "档次", "拟资助金额（元）"]
    assert [c.value for c in sheet[6]] == [1, "SZ2025-000001", "深圳市示例第1政务智能有限公司", "政务智能问答平台", "二档", 2000123.45]
    assert sheet["F6"].number_format == "#,##0.00"
    assert (sheet["A9"].value, sheet["C9"].value, sheet["F9"].value) == ("合计", "3家", v["total_award_fen"] / 100)
    lg = openpyxl.load_workbook(io.BytesIO(notice_xlsx(view(LG)))).active
    assert [c.value for c in lg[5]] == ["序号", "申报编号", "企业名称", "项目/产品", "拟资助金额（元）"]


def test_the_task_list_exports_to_xlsx() -> None:
    items = [{"task_id": 7, "application_no": "LG2025-000123", "program": LG, "step_name": "线上审核", "role": "lg_online_reviewer",
              "assignee": None, "since": "2025-12-09T10:31:00+08:00", "deadline": None, "deadline_weekday": None, "overdue": False}]
    sheet = openpyxl.load_workbook(io.BytesIO(tasks_xlsx(items, title="待办事项"))).active
    assert sheet["A1"].value == "待办事项" and sheet["B3"].value == "申报编号"
    assert [sheet.cell(4, c).value for c in (1, 2, 4, 10)] == [7, "LG2025-000123", "线上审核", "否"]


def test_the_application_list_exports_to_xlsx() -> None:
    items = [{"application_no": "SZ2025-000001", "program": SZ, "enterprise_name": "深圳市示例政务智能有限公司", "status": "tiering",
              "version": 2, "status_since": datetime(2026, 1, 5, 9, tzinfo=SH), "deadline": None}]
    sheet = openpyxl.load_workbook(io.BytesIO(applications_xlsx(items, title="申报列表"))).active
    assert [sheet.cell(3, c).value for c in range(1, 8)] == ["申报编号", "项目", "企业名称", "状态", "版本", "进入该状态时间", "截止时间"]
    assert [sheet.cell(4, c).value for c in range(1, 7)] == [
        "SZ2025-000001", SZ, "深圳市示例政务智能有限公司", "tiering", 2, "2026-01-05T09:00:00+08:00"]


def test_the_difference_between_versions_and_the_public_page() -> None:
    before = rows()
    after = [dict(before[0], award_fen=150_000_000), before[2]]
    changes = diff(before, after)
    assert [c["application_no"] for c in changes["removed"]] == ["SZ2025-000002"] and not changes["added"]
    assert [(c["before"]["award_yuan"], c["after"]["award_yuan"]) for c in changes["changed"]] == [("2,000,123.45", "1,500,000.00")]
    v = view(version=2, entries=after)  # the second version lists what is left after the change
    v.update(changes=changes, version_reason="异议成立：合同金额核减")
    html = public.page(v, program_name="深圳市政务人工智能开放场景应用专项补贴", program=SZ)
    assert '<html lang="zh-CN">' in html and 'name="viewport"' in html and "@media (max-width:640px)" in html
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    assert "与第1版相比的变更（异议成立：合同金额核减）" in html and "2,000,123.45 元 → 1,500,000.00 元" in html
    assert 'action="/public/notices/SZ-GOVAI-SCENARIO-2025/objections"' in html and 'name="phone" required' in html
    assert "提交异议" not in public.page(view(final=True), program_name="x", program=SZ)  # no form once final
    path = SCREENSHOTS / "notice-v2-changes.pdf"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path.write_bytes(notice_pdf(v))
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    assert "本版与第1版相比的变更（异议成立：合同金额核减）" in text and "移出名单：深圳市示例第2政务智能有限公司" in text
    subprocess.run(["pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "1", str(path), str(SCREENSHOTS / "notice-v2-changes")], check=True)


def test_phones_are_masked() -> None:
    assert mask_phone("13812345678") == "138****5678" and mask_phone("0755-8888 1234") == "075*****1234"
