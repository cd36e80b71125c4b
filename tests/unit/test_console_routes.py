"""The console's own rules: which buttons an official sees, where login may send the browser back
to, how the API's refusals read, and that no page pulls anything from the internet."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from services.review.console import routes
from services.review.console.client import SessionExpired, _problem
from subsidy.identity.claims import Principal, StaffRole

LG, SZ = "LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"


def person(*roles: StaffRole, programs: tuple[str, ...] = (LG,), window: str | None = None) -> Principal:
    return Principal(subject="someone", name="某人", roles=frozenset(roles), programs=frozenset(programs), window=window)


def app(status: str, program: str = LG, open_steps: tuple[str, ...] = ()) -> dict:
    return {"status": status, "program": program, "tasks": [{"step": s, "closed_at": None} for s in open_steps]}


@pytest.mark.parametrize(("who", "application", "expected"), [
    (person(StaffRole.LG_ONLINE_REVIEWER), app("online_review"), ["approve", "return", "reject"]),
    (person(StaffRole.LG_ONLINE_REVIEWER), app("back_office_review"), []),
    (person(StaffRole.LG_BACK_OFFICE_REVIEWER), app("back_office_review"), ["approve", "reject"]),
    (person(StaffRole.LG_BACK_OFFICE_REVIEWER), app("awaiting_sms_delivery"), []),  # no phone task yet
    (person(StaffRole.LG_BACK_OFFICE_REVIEWER), app("awaiting_sms_delivery", open_steps=("confirm_notice_by_phone",)), ["phone"]),
    (person(StaffRole.SZ_PRE_REVIEWER, programs=(SZ,)), app("formal_pre_review", SZ), ["approve", "return", "reject", "request_paper"]),
    (person(StaffRole.SZ_PRE_REVIEWER, programs=(SZ,)), app("online_review", LG), []),  # another program
    (person(StaffRole.WINDOW_CLERK, window="LG-W03"), app("awaiting_paper"), ["paper"]),
    (person(StaffRole.PROGRAM_ADMIN), app("award_calculation"), ["award"]),
    (person(StaffRole.PROGRAM_ADMIN, programs=(SZ,)), app("expert_scoring", SZ), ["experts"]),
    (person(StaffRole.PROGRAM_ADMIN, programs=(SZ,)), app("tiering", SZ), ["tiering"]),
    (person(StaffRole.PROGRAM_ADMIN), app("online_review"), []),  # not a reviewer's decision
    (person(StaffRole.AUDITOR, programs=(LG, SZ)), app("online_review"), []),
    (person(StaffRole.EXPERT, programs=(SZ,)), app("expert_scoring", SZ), []),
])
def test_only_the_buttons_of_this_official_in_this_step(who: Principal, application: dict, expected: list[str]) -> None:
    assert routes.available_actions(who, application) == expected


@pytest.mark.parametrize(("target", "ok"), [
    ("/console/tasks", True), ("/console/applications/LG2025-000101?tab=history", True), ("/console/", True),
    ("https://evil.example.com/", False), ("//evil.example.com/console", False), ("/consolex", False),
    ("/console/../admin", False),
    ("/console\\@evil.com", False), ("javascript:alert(1)", False),
])
def test_login_only_returns_to_a_console_page(target: str, ok: bool) -> None:
    assert bool(routes._NEXT.match(target)) is ok


def test_the_api_s_refusals_keep_their_chinese_message() -> None:
    refused = _problem(httpx.Response(409, json={"code": "wrong_state", "message": "该申报当前不在线上审核环节", "detail": None}))
    assert (refused.status, refused.code, refused.message) == (409, "wrong_state", "该申报当前不在线上审核环节")
    expired = _problem(httpx.Response(401, json={"detail": {"code": "unauthenticated", "reason": "expired",
                                                            "message": "未登录或登录已失效，请重新登录"}}))
    assert isinstance(expired, SessionExpired) and expired.code == "unauthenticated"
    bare = _problem(httpx.Response(502, text="bad gateway"))
    assert bare.message == "服务暂时不可用，请稍后再试"


def test_a_form_number_names_its_application() -> None:
    match = routes.FORM_ID.match("WF-LG2025-000301-V2")
    assert match is not None and match.group(1) == "LG2025-000301"
    assert routes.FORM_ID.match("LG2025-000301") is None


def test_no_page_fetches_anything_from_the_internet() -> None:
    console = Path(routes.__file__).parent
    external = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", re.IGNORECASE)
    for path in [*console.glob("templates/*.html"), *console.glob("static/*")]:
        text = path.read_text(encoding="utf-8")
        assert not external.search(text), f"{path.name} refers to another host"
        assert "@import" not in text and "fonts.googleapis" not in text
    css = (console / "static" / "console.css").read_text(encoding="utf-8")
    assert '"WenQuanYi Micro Hei", sans-serif' in css


@pytest.mark.parametrize(("role", "shown", "hidden"), [
    (StaffRole.AUDITOR, {"dashboard", "awards", "tiering", "audit"}, {"publication", "objections", "tasks"}),
    (StaffRole.PROGRAM_ADMIN, {"dashboard", "awards", "tiering", "publication", "objections", "tasks"}, {"audit"}),
    (StaffRole.LG_ONLINE_REVIEWER, {"tasks"}, {"awards", "tiering", "objections"}),
])
def test_each_role_s_menu(role: StaffRole, shown: set[str], hidden: set[str]) -> None:
    keys = {m.key for m in routes.MENU if person(role).any_of(m.roles)}
    assert shown <= keys and not hidden & keys


@pytest.mark.parametrize("item", routes.MENU, ids=lambda item: item.key)
def test_every_menu_entry_has_a_drawn_icon(item: routes.MenuItem) -> None:
    """An SVG line icon per entry (templates/icons.html), not a glyph the CJK font may lack."""
    svg = routes.templates.env.get_template("icons.html").module.icon(item.key)
    assert f'data-icon="{item.key}"' in svg
    assert re.search(r"<(path|rect|circle) ", svg), f"no icon drawn for {item.key}"


TEMPLATES = Path(routes.__file__).parent / "templates"


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_no_two_forms_of_a_page_send_one_idempotency_key(template: str) -> None:
    """The API answers a key only for the request it was first sent with (another one: 422
    idempotency_key_reused). The application page's decision, phone, paper and expert forms, the
    award page's confirm and adjust, the score sheet's score and decline all sent the page's one key:
    a page come back to after one of them went through sent another one under its key."""
    keys = re.findall(r'name="key" value="([^"]*)"', (TEMPLATES / template).read_text(encoding="utf-8"))
    assert len(keys) == len(set(keys)), keys


def test_a_key_used_for_another_request_reads_as_a_page_to_refresh() -> None:
    reused = _problem(httpx.Response(422, json={"code": "idempotency_key_reused", "message": "该幂等键已用于另一项操作，请使用新的 Idempotency-Key"}))
    assert routes._refusal_text(reused) == "此页面的表单已提交过其他内容，请在刷新后的页面上重新操作"
    late = _problem(httpx.Response(422, json={"code": "late", "message": "已超过规定期限（逾期视作放弃）"}))
    assert routes._refusal_text(late) == "已超过规定期限（逾期视作放弃）"


def _tiering_rule_line(rule: dict) -> str:
    template = routes.templates.env.get_template("tiering.html")
    proposal = {"rule": {"tiers": [{"tier": 1, "min_score": 85, "max_fen": 500_000_000}], "description": "", "cap_year": 2025,
                         "per_applicant_yearly_cap_fen": 1_000_000_000, "clauses": {}, **rule},
                "products": [], "total_fen": 0, "over_budget": False}
    html = "".join(template.blocks["content"](template.new_context({"proposal": proposal, "program": "SZ-GOVAI-SCENARIO-2025",
                                                                     "can_confirm": False})))
    return re.search(r"上限与预算：</strong>(.*?)</div>", html).group(1)  # type: ignore[union-attr]


def test_the_tiering_page_shows_what_the_years_budget_still_holds() -> None:
    """A confirmation round is prorated against the budget less the year's earlier rounds: the page says both."""
    line = _tiering_rule_line({"budget_fen": 500_000_000, "budget_used_fen": 333_333_334, "budget_available_fen": 166_666_666})
    assert "年度预算 500.00 万元" in line and "3,333,333.34" in line and "本批可用" in line and "1,666,666.66" in line
    assert _tiering_rule_line({"budget_fen": None, "budget_used_fen": 0, "budget_available_fen": None}).endswith("年度预算未配置。")
