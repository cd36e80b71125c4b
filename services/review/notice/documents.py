"""Exports of a notice list version (XLSX, PDF) and of the officials' task list (XLSX), in Chinese.

The PDF uses the shared ReportLab helpers (services/review/printing/pdf.py: the Chinese font
embedded, invariant bytes); XLSX files are written by xlsxwriter, amounts as numbers in 元 with two
decimals (format `#,##0.00`) computed from integer fen."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter

from services.review.notice.entries import TIER_ZH, yuan
from services.review.printing.pdf import TableDocument, render_table_document

SHANGHAI = ZoneInfo("Asia/Shanghai")


def when(moment: datetime) -> str:
    return f"{moment.astimezone(SHANGHAI):%Y年%m月%d日 %H:%M}"


def title_of(view: Mapping[str, Any]) -> str:
    return f"{view['program_name']}拟资助名单公示"


def period_line(view: Mapping[str, Any]) -> str:
    return (f"公示期：{when(view['period_starts_at'])} 至 {when(view['period_ends_at'])}"
            f"（{view['working_days']}个工作日）")


def change_lines(view: Mapping[str, Any]) -> list[str]:
    """What this version changed against the previous one (an upheld objection), for people."""
    changes = view.get("changes")
    if not changes or not any(changes.values()):
        return []
    reason = f"（{view['version_reason']}）" if view.get("version_reason") else ""
    lines = [f"本版与第{view['version'] - 1}版相比的变更{reason}："]
    lines += [f"调整：{c['enterprise_name']}（{c['application_no']}）{c['before']['award_yuan']} 元 → {c['after']['award_yuan']} 元"
              for c in changes["changed"]]
    lines += [f"移出名单：{c['enterprise_name']}（{c['application_no']}）" for c in changes["removed"]]
    lines += [f"新增：{c['enterprise_name']}（{c['application_no']}）" for c in changes["added"]]
    return lines


def _header(has_tiers: bool) -> list[str]:
    return ["序号", "申报编号", "企业名称", "项目/产品", *(["档次"] if has_tiers else []), "拟资助金额（元）"]


def _row(e: Mapping[str, Any], has_tiers: bool) -> list[str]:
    tier = [TIER_ZH.get(e["tier"], "") if e["tier"] is not None else ""] if has_tiers else []
    return [str(e["no"]), e["application_no"], e["enterprise_name"], e["project"], *tier, e["award_yuan"]]


def notice_pdf(view: Mapping[str, Any]) -> bytes:
    """`view`: list_view(...) plus notice_id, version, period_starts_at, period_ends_at, working_days, final."""
    has_tiers = view["has_tiers"]
    widths = [12, 28, 56, 42, 12, 30] if has_tiers else [12, 28, 62, 48, 30]  # 180 mm: A4 less margins
    status = "（最终名单）" if view.get("final") else ""
    return render_table_document(TableDocument(
        title=title_of(view),
        subtitle_lines=[f"公示编号：{view['notice_id']}　第{view['version']}版{status}", period_line(view), *change_lines(view)],
        header=_header(has_tiers),
        rows=[_row(e, has_tiers) for e in view["entries"]],
        footer_row=["合计", f"{view['count']}家", "", "", *([""] if has_tiers else []), view["total_award_yuan"]],
        col_widths_mm=widths,
        numeric_columns=frozenset({len(widths) - 1}),
        closing_lines=["公示期内，任何单位或个人对名单有异议的，可实名提出异议（须填写姓名和联系电话），匿名异议不予受理。"],
    ))


def notice_xlsx(view: Mapping[str, Any]) -> bytes:
    has_tiers = view["has_tiers"]
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"title": title_of(view), "created": datetime(2025, 1, 1)})  # no wall clock in the file
    sheet = book.add_worksheet(f"公示名单第{view['version']}版")
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    money_bold = book.add_format({"num_format": "#,##0.00", "bold": True})
    head = book.add_format({"bold": True, "bg_color": "#E6E6E6", "border": 1})
    sheet.write(0, 0, title_of(view), bold)
    sheet.write(1, 0, f"公示编号：{view['notice_id']}　第{view['version']}版{'（最终名单）' if view.get('final') else ''}")
    sheet.write(2, 0, period_line(view))
    for offset, line in enumerate(change_lines(view)):  # beside the period, so the table stays where it is
        sheet.write(offset, 7 if view["has_tiers"] else 6, line)
    header = _header(has_tiers)
    for col, text in enumerate(header):
        sheet.write(4, col, text, head)
    row = 5
    for e in view["entries"]:
        values = _row(e, has_tiers)[:-1]
        sheet.write_number(row, 0, e["no"])
        for col, value in enumerate(values[1:], start=1):
            sheet.write_string(row, col, value)
        sheet.write_number(row, len(header) - 1, e["award_fen"] / 100, money)
        row += 1
    sheet.write(row, 0, "合计", bold)
    sheet.write(row, 2, f"{view['count']}家", bold)
    sheet.write_number(row, len(header) - 1, view["total_award_fen"] / 100, money_bold)
    for col, width in enumerate([6, 16, 36, 30, *([8] if has_tiers else []), 18]):
        sheet.set_column(col, col, width)
    book.close()
    return out.getvalue()


TASK_COLUMNS: Sequence[tuple[str, str]] = (
    ("task_id", "待办编号"), ("application_no", "申报编号"), ("program", "项目"), ("step_name", "环节"),
    ("role", "角色"), ("assignee", "经办人"), ("since", "开始时间"), ("deadline", "截止时间"),
    ("deadline_weekday", "截止日"), ("overdue", "是否逾期"), ("closed_at", "办结时间"), ("closed_to_status", "办结结果"),
)


def tasks_xlsx(items: Iterable[Mapping[str, Any]], *, title: str) -> bytes:
    """The officials' task list (the same items `GET /api/tasks` answers), one row per task."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"title": title, "created": datetime(2025, 1, 1)})
    sheet = book.add_worksheet("待办")
    head = book.add_format({"bold": True, "bg_color": "#E6E6E6", "border": 1})
    sheet.write(0, 0, title, book.add_format({"bold": True}))
    for col, (_, text) in enumerate(TASK_COLUMNS):
        sheet.write(2, col, text, head)
    for r, item in enumerate(items, start=3):
        for col, (key, _) in enumerate(TASK_COLUMNS):
            value = item.get(key)
            if key == "overdue":
                value = "是" if value else "否"
            if isinstance(value, int) and not isinstance(value, bool):
                sheet.write_number(r, col, value)
            else:
                sheet.write_string(r, col, "" if value is None else str(value))
    for col, width in enumerate([10, 16, 24, 14, 22, 16, 26, 26, 8, 8, 26, 14]):
        sheet.set_column(col, col, width)
    book.close()
    return out.getvalue()


APPLICATION_COLUMNS: Sequence[tuple[str, str]] = (
    ("application_no", "申报编号"), ("program", "项目"), ("enterprise_name", "企业名称"), ("status", "状态"),
    ("version", "版本"), ("status_since", "进入该状态时间"), ("deadline", "截止时间"),
)


def applications_xlsx(items: Iterable[Mapping[str, Any]], *, title: str) -> bytes:
    """The officials' application list, one row per application."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"title": title, "created": datetime(2025, 1, 1)})
    sheet = book.add_worksheet("申报")
    head = book.add_format({"bold": True, "bg_color": "#E6E6E6", "border": 1})
    sheet.write(0, 0, title, book.add_format({"bold": True}))
    for col, (_, text) in enumerate(APPLICATION_COLUMNS):
        sheet.write(2, col, text, head)
    for r, item in enumerate(items, start=3):
        for col, (key, _) in enumerate(APPLICATION_COLUMNS):
            value = item.get(key)
            if isinstance(value, datetime):
                value = value.astimezone(SHANGHAI).isoformat()
            if isinstance(value, int) and not isinstance(value, bool):
                sheet.write_number(r, col, value)
            else:
                sheet.write_string(r, col, "" if value is None else str(value))
    for col, width in enumerate([16, 24, 36, 22, 6, 26, 26]):
        sheet.set_column(col, col, width)
    book.close()
    return out.getvalue()


__all__ = ["applications_xlsx", "notice_pdf", "notice_xlsx", "tasks_xlsx", "yuan"]
