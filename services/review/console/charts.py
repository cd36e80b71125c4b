"""Charts for the dashboard, drawn by the server as inline SVG (no chart library, nothing fetched).

Each function returns SVG markup (already escaped) for a template to include as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#409eff", "#67c23a", "#e6a23c", "#f56c6c", "#909399", "#7b61ff", "#13c2c2", "#eb2f96")
FONT = "font-family=\"PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif\""


def hbar(rows: Sequence[tuple[str, int]], *, width: int = 560, title: str = "", color: str = PALETTE[0]) -> str:
    """Horizontal bars, one per (label, count), the count at the bar's end."""
    bar_h, gap, label_w, top = 22, 10, 150, 8
    height = top + len(rows) * (bar_h + gap) + 8
    most = max((n for _, n in rows), default=0) or 1
    span = width - label_w - 60
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
             f'width="100%" xmlns="http://www.w3.org/2000/svg" {FONT} font-size="13">']
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle" fill="#909399">暂无数据</text>')
    for i, (label, count) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = max(2, round(span * count / most)) if count else 0
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#606266">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{span}" height="{bar_h}" fill="#f2f6fc" rx="2"/>'
                     f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{color}" rx="2"><title>{escape(label)}：{count}</title></rect>'
                     f'<text x="{label_w + w + 6}" y="{y + 15}" fill="#303133">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_columns(rows: Sequence[tuple[str, int, int]], *, width: int = 560, height: int = 240,
                    legend: tuple[str, str] = ("未逾期", "已逾期")) -> str:
    """Columns per (label, on time, overdue): on time in blue, overdue stacked in red on top."""
    left, bottom, top = 36, 40, 48
    plot_h = height - bottom - top
    most = max((a + b for _, a, b in rows), default=0) or 1
    col_w = min(56, (width - left - 10) / max(1, len(rows)) * 0.6)
    step = (width - left - 10) / max(1, len(rows))
    parts = [f'<svg class="chart" role="img" aria-label="待办分布" viewBox="0 0 {width} {height}" width="100%" '
             f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="12">',
             f'<rect x="{left}" y="6" width="10" height="10" fill="{PALETTE[0]}"/><text x="{left + 14}" y="15" fill="#606266">{legend[0]}</text>'
             f'<rect x="{left + 70}" y="6" width="10" height="10" fill="{PALETTE[3]}"/><text x="{left + 84}" y="15" fill="#606266">{legend[1]}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 6}" y2="{top + plot_h}" stroke="#dcdfe6"/>']
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle" fill="#909399">暂无待办</text>')
    for i, (label, on_time, overdue) in enumerate(rows):
        x = left + i * step + (step - col_w) / 2
        h1 = plot_h * on_time / most
        h2 = plot_h * overdue / most
        y1 = top + plot_h - h1
        parts.append(f'<rect x="{x:.1f}" y="{y1:.1f}" width="{col_w:.1f}" height="{h1:.1f}" fill="{PALETTE[0]}"><title>{escape(label)} 未逾期：{on_time}</title></rect>')
        if overdue:
            parts.append(f'<rect x="{x:.1f}" y="{y1 - h2:.1f}" width="{col_w:.1f}" height="{h2:.1f}" fill="{PALETTE[3]}"><title>{escape(label)} 已逾期：{overdue}</title></rect>')
        parts.append(f'<text x="{x + col_w / 2:.1f}" y="{y1 - h2 - 4:.1f}" text-anchor="middle" fill="#303133">{on_time + overdue}</text>'
                     f'<text x="{x + col_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#606266">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def gauge(used: int, total: int | None, *, width: int = 1100, label_used: str = "", label_total: str = "") -> str:
    """A progress bar of awards against the budget (or, without a budget, the awards alone)."""
    height = 54
    share = min(1.0, used / total) if total else 0.0
    fill = PALETTE[3] if total and used > total else PALETTE[1]
    bar_w = width - 12
    bar = (f'<rect x="6" y="8" width="{bar_w}" height="18" rx="9" fill="#ebeef5"/>'
           f'<rect x="6" y="8" width="{max(0.0, bar_w * share):.1f}" height="18" rx="9" fill="{fill}"/>') if total else \
        f'<line x1="6" y1="17" x2="{width - 6}" y2="17" stroke="#dcdfe6" stroke-dasharray="4 4"/>'  # no budget: no share to draw
    parts = [f'<svg class="chart" role="img" aria-label="资助与预算" viewBox="0 0 {width} {height}" width="100%" '
             f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="13">', bar,
             f'<text x="6" y="46" fill="#606266">{escape(label_used)}</text>',
             f'<text x="{width - 6}" y="46" text-anchor="end" fill="#606266">{escape(label_total)}</text>',
             "</svg>"]
    return "".join(parts)
