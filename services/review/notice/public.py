"""The public page of a program's current notice list (no login): HTML readable on a phone
(responsive CSS inline, nothing loaded from the internet), the list with its period and totals,
what changed since the previous version, and the objection form (实名异议)."""

from __future__ import annotations

from html import escape
from typing import Any, Mapping

from services.review.notice.documents import period_line, title_of


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


CSS = """
body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:0 12px 24px;
color:#1a1a1a;background:#fafafa;line-height:1.6}
main{max-width:960px;margin:0 auto}
h1{font-size:1.25rem;margin:16px 0 4px}
h2{font-size:1.05rem;margin:4px 0}
.meta{color:#444;font-size:.9rem;margin:2px 0}
.final{color:#0a6b2c;font-weight:bold}
table{width:100%;border-collapse:collapse;background:#fff;font-size:.9rem;margin-top:12px}
th,td{border:1px solid #ccc;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eee}
td.num{text-align:right;white-space:nowrap}
tfoot td{font-weight:bold;background:#f3f3f3}
.changes{background:#fff8e1;border:1px solid #f0d58c;padding:8px 12px;margin-top:12px;font-size:.9rem}
form{background:#fff;border:1px solid #ccc;padding:12px;margin-top:16px}
label{display:block;margin-top:8px;font-size:.9rem}
input,select,textarea{width:100%;box-sizing:border-box;padding:8px;font-size:1rem;border:1px solid #bbb;border-radius:4px}
button{margin-top:12px;padding:10px 20px;font-size:1rem;background:#1d4ed8;color:#fff;border:0;border-radius:4px}
.notice{padding:8px 12px;margin-top:12px;border-radius:4px}
.ok{background:#e7f6ec;border:1px solid #9bd3ad}.err{background:#fdecea;border:1px solid #f1a7a0}
@media (max-width:640px){
 table,thead,tbody,tfoot,tr,th,td{display:block}
 thead{display:none}
 tr{margin-bottom:10px;border:1px solid #ccc;background:#fff}
 td{border:0;border-bottom:1px solid #eee}
 td::before{content:attr(data-label)"：";font-weight:bold;color:#555}
 td.num{text-align:left}
 td.total::before{content:none}
}
"""


def page(view: Mapping[str, Any] | None, *, program_name: str, program: str, message: tuple[str, str] | None = None) -> str:
    head = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            # the console's icon (public, served by review): without one the browser asks for /favicon.ico, a 404
            f'<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">'
            f"<title>{_e(program_name)}公示</title><style>{CSS}</style></head><body><main>")
    if view is None:
        return head + f"<h1>{_e(program_name)}</h1><p>暂无公示名单。</p></main></body></html>"
    has_tiers = view["has_tiers"]
    parts = [head, f"<h1>{_e(title_of(view))}</h1>",
             f'<p class="meta">公示编号：{_e(view["notice_id"])}　第{_e(view["version"])}版</p>',
             f'<p class="meta">{_e(period_line(view))}</p>']
    if view.get("final"):
        parts.append('<p class="meta final">公示期满，本名单为最终名单。</p>')
    if message:
        kind, text = message
        parts.append(f'<div class="notice {_e(kind)}" role="status">{_e(text)}</div>')
    changes = view.get("changes")
    if changes and any(changes.values()):
        items = [f"<li>调整：{_e(c['enterprise_name'])}（{_e(c['application_no'])}）"
                 f"{_e(c['before']['award_yuan'])} 元 → {_e(c['after']['award_yuan'])} 元</li>" for c in changes["changed"]]
        items += [f"<li>移出名单：{_e(c['enterprise_name'])}（{_e(c['application_no'])}）</li>" for c in changes["removed"]]
        items += [f"<li>新增：{_e(c['enterprise_name'])}（{_e(c['application_no'])}）</li>" for c in changes["added"]]
        reason = f"（{_e(view.get('version_reason'))}）" if view.get("version_reason") else ""
        parts.append(f'<div class="changes"><strong>与第{view["version"] - 1}版相比的变更{reason}：</strong><ul>{"".join(items)}</ul></div>')
    header = ["序号", "申报编号", "企业名称", "项目/产品", *(["档次"] if has_tiers else []), "拟资助金额（元）"]
    parts.append("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead><tbody>")
    for e in view["entries"]:
        cells = [("序号", e["no"], ""), ("申报编号", e["application_no"], ""), ("企业名称", e["enterprise_name"], ""),
                 ("项目/产品", e["project"], "")]
        if has_tiers:
            cells.append(("档次", e["tier_name"] or "", ""))
        cells.append(("拟资助金额（元）", e["award_yuan"], "num"))
        parts.append("<tr>" + "".join(f'<td data-label="{label}" class="{cls}">{_e(v)}</td>' for label, v, cls in cells) + "</tr>")
    span = len(header) - 1
    parts.append(f'</tbody><tfoot><tr><td colspan="{span}" class="total">合计 {view["count"]} 家</td>'
                 f'<td class="num" data-label="合计金额（元）">{_e(view["total_award_yuan"])}</td></tr></tfoot></table>')
    if not view.get("final") and not view["entries"]:
        parts.append('<p class="meta" data-no-entries>名单内已无申报，无可提出异议的对象。</p>')
    elif not view.get("final"):
        options = "".join(f'<option value="{_e(e["application_no"])}">{_e(e["application_no"])} {_e(e["enterprise_name"])}</option>'
                          for e in view["entries"])
        parts.append(
            f'<form method="post" action="/public/notices/{_e(program)}/objections">'
            "<h2>提出异议（实名）</h2><p class=\"meta\">公示期内受理实名异议，须填写姓名和联系电话；匿名异议不予受理。</p>"
            '<label>异议对象<select name="application_no" required>' + options + "</select></label>"
            '<label>姓名<input name="name" required maxlength="50" autocomplete="name"></label>'
            '<label>联系电话<input name="phone" required maxlength="20" inputmode="tel" autocomplete="tel"></label>'
            '<label>单位<input name="organisation" maxlength="100"></label>'
            '<label>异议理由<textarea name="grounds" required maxlength="2000" rows="5"></textarea></label>'
            "<button type=\"submit\">提交异议</button></form>")
    parts.append("</main></body></html>")
    return "".join(parts)
