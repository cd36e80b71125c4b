"""The officials' console under `/console`: server-rendered pages over the reviewers' API.

Login is OIDC authorization code with PKCE (S256) at the platform's issuer (`OIDC_ISSUER`: its
`/authorize` and `/token`; on the embedded stack the local issuer's development login). The
access token lives in an HttpOnly, SameSite=Lax cookie scoped to `/console`; every page calls the
API in-process with it (client.py), so the API decides what each official may see and do. An
expired or missing session sends the official to login and back to the page they were on; what
they had typed into a form is kept in the browser's sessionStorage (static/console.js).

Pages, by role (the menu shows only one's own):

    /console/tasks                 待办 / 已办 of every role (filters, paging, 导出 XLSX)
    /console/applications/{no}     an application's tabs and the decisions the official may take
    /console/window                window clerk: find by number or form id, record paper, today's receipts
    /console/expert                expert: assigned products
    /console/expert/{no}/score     expert: the score sheet (each criterion with its justification, once), declare a conflict
    /console/admin                 administrator: dashboard per program (inline SVG charts)
    /console/admin/awards          administrator: awards to confirm, panels to assign, tiering per program
    /console/applications/{no}/award  LG award: the breakdown (contract by contract, with clauses), confirm or adjust
    /console/admin/tiering/{p}     administrator: the tiering proposal (scores, tiers, amounts, the rule), confirm
    /console/admin/publication     administrator: publication for public notice (公示)
    /console/admin/objections      administrator: objections (异议) to the notice lists: record one, decide it
    /console/applications/{no}/tasks/{id}/reassign  administrator: give an open task to another official
    (auditors read the awards, an award's breakdown and the tiering proposals, without their buttons)
    /console/audit                 auditor: the audit log and the chain's verification
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.review.console import charts
from services.review.console import format as fmt
from services.review.console.client import ApiProblem, ReviewApi, SessionExpired
from subsidy.identity.claims import ROLE_NAMES_ZH, Principal, StaffRole
from subsidy.identity.verifier import InvalidToken

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
PREFIX = "/console"
SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
FLASH_COOKIE = "console_flash"
CLIENT_ID = "subsidy-console"
PAGE_SIZE = 20
EXPORT_LIMIT = 10_000
READ_MODEL_WAIT_S = 5.0
LIST_WAIT_S = 15.0  # the lifecycles re-enlist their revised awards on the publication batch
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml",
                ".ico": "image/x-icon"}

R = StaffRole
REVIEWERS = (R.LG_ONLINE_REVIEWER, R.LG_BACK_OFFICE_REVIEWER, R.SZ_PRE_REVIEWER)
TASK_ROLES = (*REVIEWERS, R.WINDOW_CLERK, R.EXPERT, R.PROGRAM_ADMIN)


@dataclass(frozen=True)
class MenuItem:
    key: str  # also names its icon in templates/icons.html
    label: str
    href: str
    roles: tuple[StaffRole, ...]


MENU = (
    MenuItem("dashboard", "工作台", f"{PREFIX}/admin", (R.PROGRAM_ADMIN, R.AUDITOR)),
    MenuItem("tasks", "待办事项", f"{PREFIX}/tasks", TASK_ROLES),
    MenuItem("window", "窗口收件", f"{PREFIX}/window", (R.WINDOW_CLERK,)),
    MenuItem("expert", "我的评审", f"{PREFIX}/expert", (R.EXPERT,)),
    MenuItem("awards", "资助核定", f"{PREFIX}/admin/awards", (R.PROGRAM_ADMIN, R.AUDITOR)),
    MenuItem("tiering", "档次方案", f"{PREFIX}/admin/tiering", (R.PROGRAM_ADMIN, R.AUDITOR)),
    MenuItem("publication", "公示发布", f"{PREFIX}/admin/publication", (R.PROGRAM_ADMIN,)),
    MenuItem("objections", "公示异议", f"{PREFIX}/admin/objections", (R.PROGRAM_ADMIN,)),
    MenuItem("audit", "审计日志", f"{PREFIX}/audit", (R.AUDITOR,)),
    MenuItem("applications", "申报查询", f"{PREFIX}/applications", tuple(StaffRole)),
)

# Which step's tasks each role works on (filter choices of the task list).
STEPS_BY_ROLE: dict[StaffRole, tuple[str, ...]] = {
    R.LG_ONLINE_REVIEWER: ("online_review",),
    R.LG_BACK_OFFICE_REVIEWER: ("back_office_review", "confirm_notice_by_phone"),
    R.SZ_PRE_REVIEWER: ("formal_pre_review", "confirm_notice_by_phone"),
    R.WINDOW_CLERK: ("paper",),
    R.EXPERT: ("expert_scoring",),
    R.PROGRAM_ADMIN: ("award", "tiering"),
}

# Where an award stands, from computed to published (the auditor's read-only list of awards).
AWARD_STATUSES = ("award_calculation", "tiering", "awaiting_publication", "published")
AUDITOR_AWARDS_SHOWN = 200  # newest first; older ones by their number (the search form)

DETAIL_TABS = (("basic", "基本信息"), ("materials", "申报材料"), ("checks", "自动核查"), ("duplicates", "查重"),
               ("history", "历史记录"), ("sms", "短信记录"), ("deadlines", "期限"))

_NEXT_SHAPE = re.compile(r"^/console(/[A-Za-z0-9._~%/-]*)?(\?[A-Za-z0-9._~%&=+-]*)?$")


class _Next:
    """Where login may send the browser back to: a console page of this host, nothing else."""

    @staticmethod
    def match(target: str) -> bool:
        return bool(_NEXT_SHAPE.match(target)) and ".." not in target


_NEXT = _Next()
FORM_ID = re.compile(r"^WF-([A-Za-z0-9_-]{1,64})-V[0-9]{1,4}$")  # services/review/forms.py form_id_of
_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


# --- configuration and session ---------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleConfig:
    """Where the console logs in. From the settings' OIDC issuer unless an app sets its own
    (`app.state.console_config`)."""

    issuer: str
    authorize_url: str
    token_url: str
    client_id: str = CLIENT_ID
    secure_cookies: bool = False  # True behind TLS (production Ingress)

    @classmethod
    def for_issuer(cls, issuer: str, **kwargs: Any) -> ConsoleConfig:
        base = issuer.rstrip("/")
        return cls(issuer=base, authorize_url=f"{base}/authorize", token_url=f"{base}/token", **kwargs)


def config_of(request: Request) -> ConsoleConfig:
    config = getattr(request.app.state, "console_config", None)
    if config is None:
        resources = getattr(request.app.state, "resources", None)
        settings = getattr(resources, "settings", None)
        issuer = getattr(settings, "oidc_issuer", None) or request.app.state.verifier.issuer
        config = ConsoleConfig.for_issuer(issuer, secure_cookies=bool(getattr(settings, "console_secure_cookies", False)))
        request.app.state.console_config = config
    return config


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    """A page of another role: the 无权限 page."""


@dataclass
class Session:
    request: Request
    token: str
    principal: Principal

    def api(self) -> ReviewApi:
        return ReviewApi(self.request.app, self.token, request_id=self.request.headers.get("x-request-id"))

    def has(self, *roles: StaffRole) -> bool:
        return self.principal.any_of(roles)

    def require(self, *roles: StaffRole) -> None:
        if not self.has(*roles):
            raise Forbidden()


async def session_of(request: Request) -> Session:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    verifier = getattr(request.app.state, "verifier", None)
    if verifier is None:
        raise ApiProblem(503, "starting", "服务正在启动，请稍后再试")
    try:
        principal = await verifier.verify(token)
    except InvalidToken:
        raise LoginRequired() from None
    return Session(request, token, principal)


def _here(request: Request) -> str:
    """The page to come back to after login (a POST comes back to the page it was sent from)."""
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        target = request.headers.get("x-console-page") or request.url.path.rsplit("/", 1)[0]
        referer = request.headers.get("referer", "")
        marker = f"{request.url.netloc}{PREFIX}"
        if marker in referer:
            target = PREFIX + referer.split(marker, 1)[1]
    return target if _NEXT.match(target) else f"{PREFIX}/"


def _login_redirect(request: Request) -> RedirectResponse:
    response = RedirectResponse(f"{PREFIX}/login?{urlencode({'next': _here(request)})}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


# --- rendering -------------------------------------------------------------------------------

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(fmt.FILTERS)
templates.env.globals.update(PREFIX=PREFIX, ROLE_NAMES_ZH=ROLE_NAMES_ZH)


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


templates.env.globals["STATIC_VERSION"] = _static_version()


def render(request: Request, name: str, *, session: Session | None = None, status: int = 200,
           active: str = "", title: str = "", **context: Any) -> HTMLResponse:
    flash = request.cookies.get(FLASH_COOKIE)
    flash_kind, _, flash_text = (flash or "").partition(":")
    menu = [m for m in MENU if session is not None and session.has(*m.roles)]
    response = templates.TemplateResponse(request, name, {
        "session": session, "principal": session.principal if session else None, "menu": menu, "active": active,
        "title": title, "flash": {"kind": flash_kind, "text": _unquote(flash_text)} if flash else None,
        "today": _today().isoformat(), **context,
    }, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    response.headers["cache-control"] = "no-store"
    return response


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def redirect_with(url: str, kind: str, text: str, *, clear_draft: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLASH_COOKIE, f"{kind}:{quote(text)}", path=PREFIX, httponly=True, samesite="lax", max_age=60)
    if clear_draft:
        response.set_cookie("console_clear_draft", clear_draft, path=PREFIX, samesite="lax", max_age=60)
    return response


async def post_or_back(session: Session, form: Any, path: str, body: dict[str, Any], *, back: str, failure: str,
                       not_found_raises: bool = False) -> Any:
    """POST a form's action to the API with the form's idempotency key. The API's answer, or, when
    it refuses, a redirect back to `back` with "`failure`：<the API's Chinese message>" (an expired
    session goes to login; with `not_found_raises`, a 404 shows the 未找到 page). Callers return a
    `Response` as it is: `if isinstance(answer, Response): return answer`."""
    try:
        async with session.api() as client:
            return await client.post(path, body, _form_key(form.get("key")))
    except SessionExpired:
        raise
    except ApiProblem as problem:
        if not_found_raises and problem.status == 404:
            raise
        return redirect_with(back, "error", f"{failure}：{_refusal_text(problem)}")


KEY_REUSED_ZH = "此页面的表单已提交过其他内容，请在刷新后的页面上重新操作"


def _refusal_text(problem: ApiProblem) -> str:
    """The API's Chinese message, but for a form's key sent again with other content (a page left
    open, or come back to, after one of its forms went through): the official never chose a key;
    the page they are sent back to has new ones."""
    return KEY_REUSED_ZH if problem.code == "idempotency_key_reused" else problem.message


def _today() -> date:
    return datetime.now(fmt.SHANGHAI).date()


def page(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """A console page: login when the session is missing or expired; the 无权限 / 未找到 pages for
    the API's 403 / 404 (and for pages of another role)."""

    @functools.wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(request, *args, **kwargs)
        except (LoginRequired, SessionExpired):
            return _login_redirect(request)
        except Forbidden:
            return await _error_page(request, 403, "无权限", "您的角色无权访问此页面。如需办理，请联系项目管理员。")
        except ApiProblem as problem:
            if problem.status == 403:
                return await _error_page(request, 403, "无权限", problem.message)
            if problem.status == 404:
                return await _error_page(request, 404, "未找到或无权限", "未找到该记录，或您无权查看（仅可查看本人负责项目的申报）。")
            log.warning("console page failed", status=problem.status, code=problem.code)
            return await _error_page(request, 502 if problem.status >= 500 else problem.status, "操作未完成", problem.message)

    return wrapped


async def _error_page(request: Request, status: int, heading: str, message: str) -> HTMLResponse:
    try:
        session: Session | None = await session_of(request)
    except (LoginRequired, ApiProblem):
        session = None
    return render(request, "error.html", session=session, status=status, title=heading, heading=heading,
                  message=message, code=status)


def _form_key(value: Any) -> str:
    key = str(value or "")
    return key if _KEY.match(key) else f"console-{uuid.uuid4()}"


def new_key() -> str:
    """A page's key; each of its forms sends it with its own suffix (`<key>-phone`, `<key>-approve`):
    one Idempotency-Key names one request, and two forms of one page are two requests."""
    return f"console-{uuid.uuid4()}"


# --- the router ------------------------------------------------------------------------------


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, include_in_schema=False)

    # static files: our own CSS and JS only, nothing from the internet
    @api.get("/static/{name}")
    async def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            return Response("not found", status_code=404)
        return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix],
                        headers={"cache-control": "public, max-age=3600"})

    # --- login / logout -----------------------------------------------------------------------

    @api.get("/login")
    async def login(request: Request, next: str = f"{PREFIX}/") -> Response:
        config = config_of(request)
        target = next if _NEXT.match(next) else f"{PREFIX}/"
        verifier = secrets.token_urlsafe(64)
        state = secrets.token_urlsafe(24)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"response_type": "code", "client_id": config.client_id, "redirect_uri": _callback_url(request),
                           "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
                           "scope": "openid"})
        response = RedirectResponse(f"{config.authorize_url}?{query}", status_code=303)
        response.set_cookie(LOGIN_COOKIE, f"{state}.{verifier}.{quote(target, safe='')}", path=PREFIX, httponly=True,
                            samesite="lax", secure=config.secure_cookies, max_age=600)
        return response

    @api.get("/callback")
    async def callback(request: Request, code: str = "", state: str = "") -> Response:
        config = config_of(request)
        pending = request.cookies.get(LOGIN_COOKIE, "")
        expected_state, _, rest = pending.partition(".")
        verifier, _, target = rest.partition(".")
        target = _unquote(target)
        if not code or not expected_state or not secrets.compare_digest(state, expected_state):
            return render(request, "login_failed.html", status=400, title="登录未完成",
                          message="登录请求已失效或不匹配，请重新登录。")
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(config.token_url, data={
                    "grant_type": "authorization_code", "code": code, "redirect_uri": _callback_url(request),
                    "client_id": config.client_id, "code_verifier": verifier})
        except httpx.HTTPError as exc:
            log.warning("token endpoint unreachable", error=type(exc).__name__)
            return render(request, "login_failed.html", status=502, title="登录未完成", message="统一身份认证服务暂时无法访问，请稍后再试。")
        token = answer.json().get("access_token") if answer.status_code == 200 else None
        if not isinstance(token, str):
            log.warning("token exchange refused", status=answer.status_code)
            return render(request, "login_failed.html", status=400, title="登录未完成", message="登录凭据无效或已过期，请重新登录。")
        response = RedirectResponse(target if _NEXT.match(target) else f"{PREFIX}/", status_code=303)
        expires_in = answer.json().get("expires_in")
        response.set_cookie(SESSION_COOKIE, token, path=PREFIX, httponly=True, samesite="lax", secure=config.secure_cookies,
                            max_age=int(expires_in) if isinstance(expires_in, int) else None)
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @api.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{PREFIX}/logged-out", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    @api.get("/logged-out")
    async def logged_out(request: Request) -> Response:
        return render(request, "logged_out.html", title="已退出登录")

    @api.get("/")
    @page
    async def home(request: Request) -> Response:
        session = await session_of(request)
        for role, target in ((R.PROGRAM_ADMIN, "/admin"), (R.WINDOW_CLERK, "/window"), (R.EXPERT, "/expert"),
                             (R.AUDITOR, "/audit")):
            if session.has(role):
                return RedirectResponse(f"{PREFIX}{target}", status_code=303)
        return RedirectResponse(f"{PREFIX}/tasks", status_code=303)

    # --- 待办 / 已办 ---------------------------------------------------------------------------

    def task_filters(request: Request) -> dict[str, Any]:
        q = request.query_params
        return {"program": q.get("program") or None, "step": q.get("step") or None,
                "overdue": q.get("overdue") if q.get("overdue") in ("true", "false") else None,
                "sort": q.get("sort") if q.get("sort") in ("deadline", "age") else "deadline",
                "closed": "true" if q.get("tab") == "done" else None}

    @api.get("/tasks")
    @page
    async def tasks(request: Request, page: int = 1) -> Response:
        session = await session_of(request)
        session.require(*TASK_ROLES)
        filters = task_filters(request)
        page = max(1, page)
        async with session.api() as client:
            answer = await client.get("/api/tasks", {**filters, "page": page, "page_size": PAGE_SIZE})
        steps = sorted({s for r in session.principal.roles for s in STEPS_BY_ROLE.get(r, ())}, key=list(fmt.STEP_NAMES_ZH).index)
        return render(request, "tasks.html", session=session, active="tasks", title="待办事项",
                      tab="done" if filters["closed"] else "todo", filters=filters, answer=answer, page=page,
                      pages=max(1, -(-int(answer["total"]) // PAGE_SIZE)), steps=steps,
                      programs=sorted(session.principal.programs), query=_query_without_page(request))

    @api.get("/tasks/export.xlsx")
    @page
    async def tasks_export(request: Request) -> Response:
        session = await session_of(request)
        session.require(*TASK_ROLES)
        filters = task_filters(request)
        async with session.api() as client:
            items = await client.all_pages("/api/tasks", filters, limit=EXPORT_LIMIT)
        done = bool(filters["closed"])
        header = ["申报编号", "项目", "环节", "接收时间", "办理期限", "是否逾期"] + (["办结时间", "办结后状态"] if done else [])
        rows = [[t["application_no"], fmt.program_zh(t["program"]), t.get("step_name") or fmt.step_zh(t["step"]),
                 fmt.datetime_zh(t.get("since")), fmt.datetime_zh(t.get("deadline")), "是" if t.get("overdue") else "否"]
                + ([fmt.datetime_zh(t.get("closed_at")), fmt.status_zh(t.get("closed_to_status"))] if done else [])
                for t in items]
        name = f"{'已办' if done else '待办'}_{_today():%Y%m%d}.xlsx"
        return _xlsx(name, "已办事项" if done else "待办事项", header, rows)

    # --- application detail and decisions ------------------------------------------------------

    @api.get("/applications")
    @page
    async def lookup(request: Request, no: str = "") -> Response:
        session = await session_of(request)
        no = no.strip()
        if no:
            return RedirectResponse(f"{PREFIX}/applications/{quote(no, safe='')}", status_code=303)
        return render(request, "lookup.html", session=session, active="applications", title="申报查询")

    @api.get("/applications/{application_no}")
    @page
    async def application(request: Request, application_no: str, tab: str = "basic") -> Response:
        session = await session_of(request)
        async with session.api() as client:
            app = await client.get(f"/api/applications/{quote(application_no, safe='')}")
            actions = available_actions(session.principal, app)
            program = str(app.get("program") or "")
            scores, registry = None, []
            if _scoring(program) is not None and session.principal.any_of((R.PROGRAM_ADMIN, R.AUDITOR)):
                if app.get("experts"):
                    scores = await client.get(f"/api/applications/{quote(application_no, safe='')}/scores")
                if "experts" in actions or scores is not None:
                    registry = (await client.get(f"/api/programs/{quote(program, safe='')}/experts"))["experts"]
        tab = tab if tab in dict(DETAIL_TABS) else "basic"
        panel = {e["expert"] for e in app.get("experts", []) if not e.get("declined_at")}
        declined = {e["expert"] for e in app.get("experts", []) if e.get("declined_at")}
        return render(request, "application.html", session=session, active="applications",
                      title=f"申报详情 {application_no}", app=app, tab=tab, tabs=DETAIL_TABS,
                      actions=actions, key=new_key(), deadlines=_deadlines(app), sms=_sms(app),
                      registry=[e for e in registry if e["expert"] not in panel], declined=declined, scores=scores,
                      expert_names={e["expert"]: e["name"] for e in registry},
                      can_acknowledge=session.principal.in_program(program) and session.principal.any_of(REVIEWERS),
                      can_reassign=session.principal.in_program(program) and session.has(R.PROGRAM_ADMIN),
                      scoring=_scoring(program))

    async def act(request: Request, application_no: str, path: str, body: dict[str, Any], done: str,
                  draft: str, back: str | None = None) -> Response:
        session = await session_of(request)
        form = await request.form()
        back = back or f"{PREFIX}/applications/{quote(application_no, safe='')}"
        answer = await post_or_back(session, form, f"/api/applications/{quote(application_no, safe='')}/{path}", body,
                                    back=back, failure="未能提交", not_found_raises=True)
        if isinstance(answer, Response):
            return answer
        status = answer.get("status") if isinstance(answer, dict) else None
        if status:
            await _until_read_model_shows(session, application_no, status)
        text = done + (f"。申报当前状态：{fmt.status_zh(status)}" if status else "")
        return redirect_with(back, "success", text, clear_draft=draft)

    @api.post("/applications/{application_no}/decision")
    @page
    async def decide(request: Request, application_no: str) -> Response:
        form = await request.form()
        decision = str(form.get("decision", ""))
        reasons = [line.strip() for line in str(form.get("reasons", "")).splitlines() if line.strip()]
        body: dict[str, Any] = {"decision": decision, "reasons": reasons}
        if decision == "return":
            resubmit_by = str(form.get("resubmit_by", "")).strip()
            try:
                if date.fromisoformat(resubmit_by) < _today():
                    return redirect_with(f"{PREFIX}/applications/{quote(application_no, safe='')}", "error",
                                         "重新提交截止日期不能早于今天")
            except ValueError:
                return redirect_with(f"{PREFIX}/applications/{quote(application_no, safe='')}", "error",
                                     "退回修改须填写重新提交截止日期")
            body["resubmit_by"] = resubmit_by
        return await act(request, application_no, "decisions", body, f"已提交审核决定：{fmt.decision_zh(decision)}",
                         draft=f"decision-{decision}-{application_no}")

    @api.post("/applications/{application_no}/phone-confirmation")
    @page
    async def phone(request: Request, application_no: str) -> Response:
        return await act(request, application_no, "phone-confirmation", {}, "已登记电话通知确认", draft=f"phone-{application_no}")

    @api.post("/applications/{application_no}/paper")
    @page
    async def paper(request: Request, application_no: str) -> Response:
        form = await request.form()
        back = f"{PREFIX}/window?q={quote(application_no, safe='')}" if form.get("from") == "window" else None
        try:
            copies = int(str(form.get("copies", "")))
        except ValueError:
            return redirect_with(back or f"{PREFIX}/applications/{quote(application_no, safe='')}", "error", "请填写份数")
        body: dict[str, Any] = {"copies": copies, "bound_and_stamped": form.get("bound_and_stamped") == "yes"}
        if str(form.get("form_id", "")).strip():
            body["form_id"] = str(form.get("form_id")).strip()
        return await act(request, application_no, "paper", body, "已登记纸质材料收件", draft=f"paper-{application_no}", back=back)

    @api.get("/applications/{application_no}/award")
    @page
    async def award(request: Request, application_no: str) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN, R.AUDITOR)
        async with session.api() as client:
            app = await client.get(f"/api/applications/{quote(application_no, safe='')}")
            computed = await client.get(f"/api/applications/{quote(application_no, safe='')}/award")
        return render(request, "award.html", session=session, active="awards", title=f"资助金额核定 {application_no}", app=app,
                      award=computed, b=computed.get("breakdown") or {}, key=new_key(), config=_award(app.get("program")),
                      can_confirm="award" in available_actions(session.principal, app) and computed.get("confirmed_fen") is None)

    @api.post("/applications/{application_no}/award/confirm")
    @page
    async def confirm_award(request: Request, application_no: str) -> Response:
        form = await request.form()
        back = f"{PREFIX}/applications/{quote(application_no, safe='')}/award"
        if form.get("mode") == "adjust":
            reason = str(form.get("reason", "")).strip()
            try:
                amount = fmt.fen_from_yuan(str(form.get("award_yuan", "")))
            except ValueError:
                return redirect_with(back, "error", "金额须为不小于零、最多两位小数的数字（元）")
            if not reason:
                return redirect_with(back, "error", "调整资助金额须填写理由")
            return await act(request, application_no, "award/confirm", {"adjusted_award_fen": amount, "reason": reason},
                             f"已按调整后的金额 {fmt.yuan(amount)} 元核定", draft=f"award-adjust-{application_no}", back=back)
        return await act(request, application_no, "award/confirm", {}, "已确认平台核定的资助金额", draft=f"award-{application_no}", back=back)

    @api.post("/applications/{application_no}/duplicate-flags/{flag_id}/acknowledge")
    @page
    async def acknowledge_flag(request: Request, application_no: str, flag_id: int) -> Response:
        form = await request.form()
        note = str(form.get("note", "")).strip()
        return await act(request, application_no, f"duplicate-flags/{flag_id}/acknowledge", {"note": note} if note else {},
                         "已确认知悉该重复申报提示", draft=f"flag-{application_no}-{flag_id}",
                         back=f"{PREFIX}/applications/{quote(application_no, safe='')}?tab=duplicates")

    @api.post("/applications/{application_no}/experts")
    @page
    async def experts(request: Request, application_no: str) -> Response:
        form = await request.form()
        chosen = [str(e).strip() for e in form.getlist("experts") if str(e).strip()]
        if not chosen:
            return redirect_with(f"{PREFIX}/applications/{quote(application_no, safe='')}", "error", "请至少选择一位评审专家")
        return await act(request, application_no, "experts", {"experts": chosen},
                         f"已分配评审专家：{'、'.join(chosen)}", draft=f"experts-{application_no}")

    @api.post("/applications/{application_no}/decline")
    @page
    async def decline(request: Request, application_no: str) -> Response:
        form = await request.form()
        reason = str(form.get("reason", "")).strip()
        back = f"{PREFIX}/expert/{quote(application_no, safe='')}/score"
        if not reason:
            return redirect_with(back, "error", "声明回避须填写利益冲突情况")
        return await act(request, application_no, "expert-assignment/decline", {"reason": reason},
                         "已声明回避，该评审任务已退回项目管理员", draft=f"decline-{application_no}", back=f"{PREFIX}/expert")

    @api.post("/expert/{application_no}/score")
    @page
    async def submit_score(request: Request, application_no: str) -> Response:
        session = await session_of(request)
        session.require(R.EXPERT)
        form = await request.form()
        back = f"{PREFIX}/expert/{quote(application_no, safe='')}/score"
        async with session.api() as client:
            app = await client.get(f"/api/applications/{quote(application_no, safe='')}")
        scoring = _scoring(app.get("program"))
        if scoring is None:
            return redirect_with(back, "error", "该项目不进行专家评审")
        criteria: dict[str, Any] = {}
        for c in scoring.criteria:
            raw, why = str(form.get(f"points_{c.key}", "")).strip(), str(form.get(f"why_{c.key}", "")).strip()
            if not raw.isdigit() or not 0 <= int(raw) <= scoring.scale_max:
                return redirect_with(back, "error", f"{c.name}的评分须为 0-{scoring.scale_max} 的整数")
            if not why:
                return redirect_with(back, "error", f"请填写{c.name}的评分理由")
            criteria[c.key] = {"points": int(raw), "justification": why}
        return await act(request, application_no, "scores", {"criteria": criteria}, "评分已提交", draft=f"score-{application_no}",
                         back=back)

    # --- window clerk ------------------------------------------------------------------------

    @api.get("/window")
    @page
    async def window(request: Request, q: str = "") -> Response:
        session = await session_of(request)
        session.require(R.WINDOW_CLERK)
        q = q.strip()
        found: dict[str, Any] | None = None
        not_found = False
        async with session.api() as client:
            if q:
                try:
                    form = FORM_ID.match(q)  # the number printed on the paper form names its application
                    no = form.group(1) if form else q
                    found = await client.get(f"/api/applications/{quote(no, safe='')}")
                except ApiProblem as problem:
                    if problem.status not in (400, 404):
                        raise
                    not_found = True
            waiting = await client.get("/api/tasks", {"step": "paper", "page_size": 50})
            closed = await client.all_pages("/api/tasks", {"closed": "true", "step": "paper"}, limit=500)
        today = _today()
        receipts = [t for t in closed if fmt.local_date(t.get("closed_at")) == today]
        return render(request, "window.html", session=session, active="window", title="窗口收件", q=q, found=found,
                      not_found=not_found, waiting=waiting, receipts=receipts, key=new_key(),
                      form_id=q if FORM_ID.match(q) else "",
                      can_receive=found is not None and found.get("status") == "awaiting_paper")

    # --- expert ------------------------------------------------------------------------------

    @api.get("/expert")
    @page
    async def expert(request: Request) -> Response:
        session = await session_of(request)
        session.require(R.EXPERT)
        async with session.api() as client:
            answer = await client.get("/api/tasks", {"page_size": 100})
        return render(request, "expert.html", session=session, active="expert", title="我的评审", answer=answer)

    @api.get("/expert/{application_no}/score")
    @page
    async def score_sheet(request: Request, application_no: str) -> Response:
        session = await session_of(request)
        session.require(R.EXPERT)
        async with session.api() as client:
            app = await client.get(f"/api/applications/{quote(application_no, safe='')}")
            mine = await client.get(f"/api/applications/{quote(application_no, safe='')}/scores")
        own = next((s for s in mine.get("scores", []) if s.get("expert") == session.principal.subject), None)
        return render(request, "score_sheet.html", session=session, active="expert", title="评分表", app=app,
                      scoring=_scoring(app.get("program")), own=own, key=new_key())

    # --- administrator -----------------------------------------------------------------------

    @api.get("/admin")
    @page
    async def dashboard(request: Request, program: str = "") -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN, R.AUDITOR)
        programs = sorted(session.principal.programs)
        program = program if program in programs else (programs[0] if programs else "")
        async with session.api() as client:
            board = await client.get(f"/api/programs/{quote(program, safe='')}/dashboard")
        return render(request, "dashboard.html", session=session, active="dashboard", title="工作台",
                      programs=programs, program=program, board=board, charts=_dashboard_charts(board))

    @api.get("/admin/awards")
    @page
    async def awards(request: Request, no: str = "") -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN, R.AUDITOR)
        if not session.has(R.PROGRAM_ADMIN):  # the auditor: the awards of their programs, newest first, read only
            no = no.strip()
            async with session.api() as client:
                by_status = {status: (await client.get("/api/applications", {"status": status, "application_no": no,
                                                                              "limit": AUDITOR_AWARDS_SHOWN}))["items"]
                             for status in AWARD_STATUSES}
            rows = sorted((a for items in by_status.values() for a in items), key=lambda a: a["status_since"] or "", reverse=True)
            return render(request, "awards_read.html", session=session, active="awards", title="资助核定（查阅）", no=no,
                          rows=rows[:AUDITOR_AWARDS_SHOWN], more=len(rows) > AUDITOR_AWARDS_SHOWN,
                          award_programs={p for p in session.principal.programs if _award(p) is not None},
                          tiering_programs=sorted(p for p in session.principal.programs if _scoring(p) is not None))
        async with session.api() as client:
            lists = {step: await client.get("/api/tasks", {"step": step, "page_size": 100}) for step in ("award", "tiering", "expert_scoring")}
            tiering_programs = sorted(p for p in session.principal.programs if _scoring(p) is not None)
            award_programs = sorted(p for p in session.principal.programs if _award(p) is not None)
            budgets = await _budgets(client, award_programs)
        shown = (["award"] if award_programs else []) + (["tiering", "expert_scoring"] if tiering_programs else [])
        return render(request, "awards.html", session=session, active="awards", title="资助核定", lists=lists,
                      tiering_programs=tiering_programs, shown=shown, budgets=budgets, key=new_key())

    @api.post("/admin/awards/budget")
    @page
    async def apply_budget(request: Request) -> Response:
        """按比例核减: the unpublished list the administrator saw, prorated to what the budget leaves."""
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        form = await request.form()
        program = str(form.get("program", ""))
        back = f"{PREFIX}/admin/awards#budget-{quote(program, safe='')}"
        seen = [str(a) for a in form.getlist("applications") if str(a).strip()]
        answer = await post_or_back(session, form, f"/api/programs/{quote(program, safe='')}/awards/budget",
                                    {"applications": seen}, back=back, failure="未能按比例核减")
        if isinstance(answer, Response):
            return answer
        await _until_list_prorated(session, program)
        revised, failed = answer.get("revised") or [], answer.get("failed") or []
        text = (f"已按预算比例核减 {len(revised)} 项资助金额：名单合计 {fmt.yuan(answer.get('prorated_total_fen'))} 元"
                f"（预算可用额度 {fmt.yuan(answer.get('available_fen'))} 元）")
        if failed:
            text += "；未能核减：" + "；".join(f"{f.get('application_no')}（{f.get('message')}）" for f in failed)
        return redirect_with(back, "error" if failed else "success", text)

    @api.get("/admin/tiering")
    @page
    async def tiering_index(request: Request) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN, R.AUDITOR)
        programs = sorted(p for p in session.principal.programs if _scoring(p) is not None)
        if len(programs) == 1:
            return RedirectResponse(f"{PREFIX}/admin/tiering/{quote(programs[0], safe='')}", status_code=303)
        return render(request, "tiering_index.html", session=session, active="tiering", title="档次方案", programs=programs)

    @api.get("/admin/tiering/{program}")
    @page
    async def tiering(request: Request, program: str) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN, R.AUDITOR)
        async with session.api() as client:
            proposal = await client.get(f"/api/programs/{quote(program, safe='')}/tiering")
        return render(request, "tiering.html", session=session, active="tiering", title=f"档次与资助金额 · {fmt.program_zh(program)}",
                      program=program, proposal=proposal, key=new_key(), can_confirm=session.principal.has(R.PROGRAM_ADMIN))

    @api.post("/admin/tiering/{program}")
    @page
    async def confirm_tiering(request: Request, program: str) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        form = await request.form()
        back = f"{PREFIX}/admin/tiering/{quote(program, safe='')}"
        seen = [str(a) for a in form.getlist("applications") if str(a).strip()]
        answer = await post_or_back(session, form, f"/api/programs/{quote(program, safe='')}/tiering/confirm",
                                    {"applications": seen}, back=back, failure="未能确认", not_found_raises=True)
        if isinstance(answer, Response):
            return answer
        confirmed, failed = answer.get("confirmed") or [], answer.get("failed") or []
        for entry in confirmed:
            no = entry.get("application_no") if isinstance(entry, dict) else entry
            status = entry.get("status") if isinstance(entry, dict) else None
            if no and status:
                await _until_read_model_shows(session, str(no), str(status))
        text = f"已确认 {len(confirmed)} 项的档次与资助金额" + (f"；{len(failed)} 项未能记录，请稍后重试" if failed else "")
        return redirect_with(back, "error" if failed else "success", text)

    @api.get("/admin/publication")
    @page
    async def publication(request: Request) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        async with session.api() as client:
            waiting = await client.all_pages("/api/tasks", {"step": "publication"}, limit=EXPORT_LIMIT)
            by_program: dict[str, list[dict[str, Any]]] = {p: [] for p in sorted(session.principal.programs)}
            for t in waiting:
                by_program.setdefault(t["program"], []).append(t)
            # An application stays 待公示 (its task open) until its list is final: show which ones are
            # on the list in its notice period now, so the administrator does not publish them again.
            running: dict[str, dict[str, Any]] = {}
            for program in by_program:
                lists = (await client.get(f"/api/programs/{quote(program, safe='')}/notice")).get("lists") or []
                newest = lists[0] if lists else None
                # the newest list, running or just final (its applications close a moment later)
                if newest:
                    view = await client.get(f"/api/programs/{quote(program, safe='')}/notice/versions/{int(newest['latest_version'])}",
                                            {"notice_id": newest["notice_id"]})
                    ends = fmt._moment(newest.get("period_ends_at"))
                    running[program] = {**newest, "on_list": {e["application_no"] for e in view.get("entries", [])},
                                        "period_over": ends is not None and ends <= datetime.now(fmt.SHANGHAI)}
            budgets = await _budgets(client, [p for p in by_program if _award(p) is not None])
        return render(request, "publication.html", session=session, active="publication", title="公示发布",
                      by_program=by_program, running=running, budgets=budgets, key=new_key())

    @api.post("/admin/publication")
    @page
    async def publish(request: Request) -> Response:
        session = await session_of(request)
        form = await request.form()
        program = str(form.get("program", ""))
        back = f"{PREFIX}/admin/publication"
        body: dict[str, Any] = {}
        raw_start = str(form.get("starts_at", "")).strip()
        if raw_start:  # when the list went up on the bureau's website (Asia/Shanghai); the API refuses a future one
            try:
                body["starts_at"] = datetime.fromisoformat(raw_start).replace(tzinfo=fmt.SHANGHAI).isoformat()
            except ValueError:
                return redirect_with(back, "error", "公示开始时间格式不正确")
        answer = await post_or_back(session, form, f"/api/programs/{quote(program, safe='')}/publication", body,
                                    back=back, failure="未能发布")
        if isinstance(answer, Response):
            return answer
        await _until_notice_listed(session, program, str(answer.get("notice_id") or ""))
        text = f"已发布公示 {answer.get('notice_id', '')}：{answer.get('entries', 0)} 项，资助总额 {fmt.wan_yuan(answer.get('total_award_fen'))} 万元"
        return redirect_with(back, "success", text)

    # --- objections (异议) to the notice lists -------------------------------------------------

    @api.get("/admin/objections")
    @page
    async def objections(request: Request, program: str = "") -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        programs = sorted(session.principal.programs)
        program = program if program in programs else (programs[0] if programs else "")
        async with session.api() as client:
            answer = await client.get(f"/api/programs/{quote(program, safe='')}/notice")
            latest: dict[str, Any] = {}
            lists = answer.get("lists") or []
            # Objections go to the program's latest list while its period runs (the API refuses others).
            newest = lists[0] if lists else None
            current = newest if newest and newest.get("final_version") is None and \
                datetime.fromisoformat(str(newest["period_ends_at"])) > datetime.now(fmt.SHANGHAI) else None
            if current is not None:  # the entries objected to, as the list now reads (the uphold dialog's amounts)
                view = await client.get(f"/api/programs/{quote(program, safe='')}/notice/versions/{int(current['latest_version'])}",
                                        {"notice_id": current["notice_id"]})
                latest = {e["application_no"]: e for e in view.get("entries", [])}
        return render(request, "objections.html", session=session, active="objections", title="公示异议", programs=programs,
                      program=program, lists=lists, current=current, entries=latest, key=new_key(),
                      open_count=sum(1 for lst in lists for o in lst.get("objections", []) if o.get("status") == "open"))

    @api.post("/admin/objections")
    @page
    async def record_objection(request: Request) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        form = await request.form()
        program = str(form.get("program", ""))
        back = f"{PREFIX}/admin/objections?program={quote(program, safe='')}"
        body = {k: str(form.get(k, "")).strip() for k in ("application_no", "name", "phone", "organisation", "grounds")}
        answer = await post_or_back(session, form, f"/api/programs/{quote(program, safe='')}/notice/objections", body,
                                    back=back, failure="未能登记")
        if isinstance(answer, Response):
            return answer
        return redirect_with(back, "success", f"已登记异议（编号 {answer.get('objection_id')}），请核查后处理",
                             clear_draft=f"objection-{program}")

    @api.post("/admin/objections/{objection_id}")
    @page
    async def decide_objection(request: Request, objection_id: int) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        form = await request.form()
        program = str(form.get("program", ""))
        back = f"{PREFIX}/admin/objections?program={quote(program, safe='')}"
        decision, reason = str(form.get("decision", "")), str(form.get("reason", "")).strip()
        if not reason:
            return redirect_with(back, "error", "处理异议须填写理由")
        body: dict[str, Any] = {"decision": decision, "reason": reason}
        if decision == "uphold":
            if form.get("remedy") == "remove":
                body["remove"] = True
            else:
                try:
                    body["award_fen"] = fmt.fen_from_yuan(str(form.get("award_yuan", "")))
                except ValueError:
                    return redirect_with(back, "error", "调整后的资助金额须为不小于零、最多两位小数的数字（元）")
        answer = await post_or_back(session, form, f"/api/objections/{objection_id}/decision", body,
                                    back=back, failure="未能处理")
        if isinstance(answer, Response):
            return answer
        version = answer.get("new_version")
        text = ("已认定异议成立" + (f"，公示名单已更新为第 {version} 版" if version else "")) if decision == "uphold" else "已认定异议不成立，公示名单不变"
        return redirect_with(back, "success", text, clear_draft=f"objection-decision-{objection_id}")

    # --- reassigning a task ---------------------------------------------------------------------

    @api.get("/applications/{application_no}/tasks/{task_id}/reassign")
    @page
    async def reassign_page(request: Request, application_no: str, task_id: int) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        async with session.api() as client:
            app = await client.get(f"/api/applications/{quote(application_no, safe='')}")
            task = next((t for t in app.get("tasks", []) if t.get("task_id") == task_id), None)
            if task is None:
                raise ApiProblem(404, "task_not_found", "未找到该待办")
            seen = await client.get(f"/api/programs/{quote(app['program'], safe='')}/officials", {"role": task["role"]})
        candidates = [o for o in seen.get("officials", []) if o["subject"] != task.get("assignee")]
        return render(request, "reassign.html", session=session, active="applications", title=f"转派待办 {application_no}", app=app,
                      task=task, candidates=candidates, key=new_key())

    @api.post("/applications/{application_no}/tasks/{task_id}/reassign")
    @page
    async def reassign(request: Request, application_no: str, task_id: int) -> Response:
        session = await session_of(request)
        session.require(R.PROGRAM_ADMIN)
        form = await request.form()
        back = f"{PREFIX}/applications/{quote(application_no, safe='')}/tasks/{task_id}/reassign"
        assignee = str(form.get("assignee", "")).strip()
        async with session.api() as client:
            app = await client.get(f"/api/applications/{quote(application_no, safe='')}")
            task = next((t for t in app.get("tasks", []) if t.get("task_id") == task_id), None)
            if task is None:
                raise ApiProblem(404, "task_not_found", "未找到该待办")
            seen = await client.get(f"/api/programs/{quote(app['program'], safe='')}/officials", {"role": task["role"]})
            if assignee not in {o["subject"] for o in seen.get("officials", [])}:  # same role, same program only
                return redirect_with(back, "error", f"请选择本项目的{fmt.role_zh(task['role'])}")
            try:
                await client.post(f"/api/tasks/{task_id}/assignee", {"assignee": assignee}, _form_key(form.get("key")))
            except ApiProblem as problem:
                if problem.status in (401, 404):
                    raise
                return redirect_with(back, "error", f"未能转派：{_refusal_text(problem)}")
        return redirect_with(f"{PREFIX}/applications/{quote(application_no, safe='')}", "success",
                             f"已将「{task.get('step_name') or fmt.step_zh(task['step'])}」待办转派给 {assignee}")

    # --- auditor -----------------------------------------------------------------------------

    def audit_filters(request: Request) -> dict[str, Any]:
        q = request.query_params
        filters: dict[str, Any] = {k: (q.get(k) or "").strip() or None for k in ("application_no", "actor", "action")}
        for name, edge in (("from", "from_date"), ("to", "to_date")):
            raw = (q.get(edge) or "").strip()
            try:
                day = date.fromisoformat(raw) if raw else None
            except ValueError:
                day = None
            if day is not None:
                if name == "to":
                    day += timedelta(days=1)
                filters[name] = datetime.combine(day, datetime.min.time(), tzinfo=fmt.SHANGHAI).isoformat()
        return filters

    @api.get("/audit")
    @page
    async def audit(request: Request, page: int = 1, verify: str = "") -> Response:
        session = await session_of(request)
        session.require(R.AUDITOR)
        page = max(1, page)
        async with session.api() as client:
            answer = await client.get("/api/audit", {**audit_filters(request), "page": page, "page_size": PAGE_SIZE})
            chain = await client.get("/api/audit/verify") if verify == "1" else None
        return render(request, "audit.html", session=session, active="audit", title="审计日志", answer=answer, page=page,
                      pages=max(1, -(-int(answer["total"]) // PAGE_SIZE)), chain=chain, q=request.query_params,
                      query=_query_without_page(request), actions=fmt.ACTION_NAMES_ZH)

    @api.get("/audit/export.xlsx")
    @page
    async def audit_export(request: Request) -> Response:
        session = await session_of(request)
        session.require(R.AUDITOR)
        async with session.api() as client:
            items = await client.all_pages("/api/audit", audit_filters(request), limit=EXPORT_LIMIT)
        header = ["序号", "时间", "人员", "角色", "操作", "项目", "申报编号", "结果", "原因", "请求编号", "哈希"]
        rows = [[r["seq"], fmt.datetime_zh(r["occurred_at"]), r["subject"], fmt.role_zh(r["role"]), fmt.action_zh(r["action"]),
                 r.get("program") or "", r.get("application_no") or "", fmt.outcome_zh(r["outcome"]), r.get("reason") or "",
                 r.get("request_id") or "", r.get("hash") or ""] for r in items]
        return _xlsx(f"审计日志_{_today():%Y%m%d}.xlsx", "审计日志", header, rows)

    return api


async def _until_read_model_shows(session: Session, application_no: str, status: str) -> None:
    """The workflow answered with the new status; review's read model learns it from the
    state-changed event a moment later. Wait for it (bounded) so the page the official lands on
    does not show the step they just left, with its buttons."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READ_MODEL_WAIT_S
    async with session.api() as client:
        while loop.time() < deadline:
            try:
                seen = await client.get(f"/api/applications/{quote(application_no, safe='')}")
            except ApiProblem:
                return
            if seen.get("status") == status:
                return
            await asyncio.sleep(0.2)
    log.info("read model behind the decision", wanted=status)


async def _budgets(client: ReviewApi, programs: list[str]) -> dict[str, dict[str, Any]]:
    """The batch budget of each Longgang-shaped program that has one: `budget` of
    `GET /api/programs/{p}/awards` (the unpublished list against it) and the awards by number."""
    found: dict[str, dict[str, Any]] = {}
    for program in programs:
        config = _award(program)
        if config is None or getattr(config, "budget_fen", None) is None:
            continue
        try:
            awards = await client.get(f"/api/programs/{quote(program, safe='')}/awards")
        except SessionExpired:
            raise
        except ApiProblem as problem:  # the page still serves its lists; the section says why it is missing
            found[program] = {"budget": None, "unavailable": problem.message, "awards": {}}
            continue
        found[program] = {"budget": awards.get("budget"), "unavailable": None if awards.get("budget") else "公示名单暂时无法读取，请稍后刷新",
                          "awards": {a["application_no"]: a for a in awards.get("applications") or []}}
    return found


async def _until_list_prorated(session: Session, program: str) -> None:
    """Each lifecycle accepted its revised award; the publication batch learns it when the lifecycle
    enlists again a moment later. Wait for it (bounded) so the page shows the amounts revised."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIST_WAIT_S
    async with session.api() as client:
        while loop.time() < deadline:
            try:
                budget = (await client.get(f"/api/programs/{quote(program, safe='')}/awards")).get("budget") or {}
            except ApiProblem:
                return
            if budget.get("listed_total_fen") == budget.get("prorated_total_fen"):
                return
            await asyncio.sleep(0.3)
    log.info("publication list behind the budget", program=program)


async def _until_notice_listed(session: Session, program: str, notice_id: str) -> None:
    """The publication batch accepted the list; review records it a moment later. Wait for it
    (bounded) so the page shows it on its list, not as still to publish."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIST_WAIT_S
    async with session.api() as client:
        while notice_id and loop.time() < deadline:
            try:
                lists = (await client.get(f"/api/programs/{quote(program, safe='')}/notice")).get("lists") or []
            except ApiProblem:
                return
            if any(n.get("notice_id") == notice_id for n in lists):
                return
            await asyncio.sleep(0.3)
    log.info("notice list behind the publication", program=program)


def _callback_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + f"{PREFIX}/callback"


def _query_without_page(request: Request) -> str:
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "verify")])


# --- what a page needs from the API's answers -----------------------------------------------


def available_actions(principal: Principal, app: dict[str, Any]) -> list[str]:
    """The buttons of an application's page: only what this official may do in its current step
    (the API refuses anything else all the same)."""
    status, program = app.get("status"), app.get("program", "")
    if not principal.in_program(program):
        return []
    open_steps = {t.get("step") for t in app.get("tasks", []) if not t.get("closed_at")}
    lg, sz = program.startswith("LG-"), program.startswith("SZ-")
    actions: list[str] = []
    if status == "online_review" and lg and principal.has(R.LG_ONLINE_REVIEWER):
        actions += ["approve", "return", "reject"]
    if status == "back_office_review" and lg and principal.has(R.LG_BACK_OFFICE_REVIEWER):
        actions += ["approve", "reject"]
    if status == "formal_pre_review" and sz and principal.has(R.SZ_PRE_REVIEWER):
        actions += ["approve", "return", "reject", "request_paper"]
    if status == "awaiting_sms_delivery" and "confirm_notice_by_phone" in open_steps and principal.any_of(
            (R.LG_BACK_OFFICE_REVIEWER,) if lg else (R.SZ_PRE_REVIEWER,)):
        actions.append("phone")
    if status == "awaiting_paper" and principal.has(R.WINDOW_CLERK):
        actions.append("paper")
    if principal.has(R.PROGRAM_ADMIN):
        if status == "award_calculation":
            actions.append("award")
        if status == "tiering":
            actions.append("tiering")
        if status == "expert_scoring":
            actions.append("experts")
    return actions


def _award(program: str | None) -> Any:
    """The batch's `[award]` (a Longgang-shaped award computed by the platform), None otherwise."""
    from subsidy.programs import programs

    found = programs().get(program or "")
    return getattr(found, "award", None) if found is not None else None


def _scoring(program: str | None) -> Any:
    """The batch's `[scoring]` (criteria, scale, panel size), None for a program without experts."""
    from subsidy.programs import programs

    found = programs().get(program or "")
    return getattr(found, "scoring", None) if found is not None else None


def _deadlines(app: dict[str, Any]) -> list[dict[str, Any]]:
    """Every deadline the application has had, newest first: the state change that set it."""
    rows = [{"at": h.get("at"), "deadline": h.get("deadline"), "status": h.get("to"), "reason": h.get("reason")}
            for h in app.get("history", []) if h.get("kind") == "state_change" and h.get("deadline")]
    return list(reversed(rows))


def _sms(app: dict[str, Any]) -> dict[str, Any]:
    sms = app.get("sms") or {}
    if sms.get("unavailable"):
        return {"unavailable": True, "messages": []}
    return {"unavailable": False, "messages": sms.get("messages", [])}


def _dashboard_charts(board: dict[str, Any]) -> dict[str, str]:
    by_status = board.get("applications_by_status", {})
    status_rows = [(fmt.status_zh(s), int(n)) for s, n in sorted(by_status.items(), key=lambda kv: -int(kv[1]))]
    task_rows = [(fmt.step_zh(step), int(v.get("open", 0)) - int(v.get("overdue", 0)), int(v.get("overdue", 0)))
                 for step, v in board.get("open_tasks_by_step", {}).items()]
    awards = board.get("awards") or {}
    total, budget = int(awards.get("total_fen") or 0), awards.get("budget_fen")
    return {
        "status": charts.hbar(status_rows, title="各状态申报数"),
        "tasks": charts.stacked_columns(task_rows),
        "budget": charts.gauge(total, budget, label_used=f"已核定 {fmt.wan_yuan(total)} 万元",
                               label_total=f"预算 {fmt.wan_yuan(budget)} 万元" if budget else "未配置预算"),
    }


def _xlsx(filename: str, sheet: str, header: list[str], rows: list[list[Any]]) -> Response:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = book.add_worksheet(sheet)
    bold = book.add_format({"bold": True, "bg_color": "#F5F7FA", "border": 1})
    ws.write_row(0, 0, header, bold)
    for i, row in enumerate(rows, start=1):
        ws.write_row(i, 0, row)
    for col, title in enumerate(header):
        widest = max([len(str(title)) * 2] + [len(str(r[col])) * (2 if re.search(r"[^\x00-\x7f]", str(r[col])) else 1)
                                              for r in rows[:200]])
        ws.set_column(col, col, min(60, max(10, widest + 2)))
    ws.freeze_panes(1, 0)
    book.close()
    ascii_name = re.sub(r"[^A-Za-z0-9_.-]", "", filename) or "export.xlsx"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return Response(buffer.getvalue(), headers={"content-disposition": disposition, "cache-control": "no-store"},
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

