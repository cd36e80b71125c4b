"""The local issuer's development login (embedded stack only): OIDC authorization code with PKCE.

    GET  /authorize   the list of development users (deploy/embedded/dev_users.py), in Chinese;
                      takes response_type=code, client_id, redirect_uri, state, code_challenge,
                      code_challenge_method=S256 (PKCE is required, `plain` is refused)
    POST /authorize   one user picked: 303 to redirect_uri?code=...&state=...
    POST /token       grant_type=authorization_code + code + redirect_uri + client_id + code_verifier:
                      the code's PKCE challenge must be BASE64URL(SHA256(code_verifier)); answers
                      {"access_token", "token_type": "Bearer", "expires_in"} with a token minted by
                      `LocalIssuer.mint` for the user's claims

Codes are single-use, live `CODE_TTL_S` seconds and are held in memory (a restart forgets them).
redirect_uri must point at loopback: this page hands out any role to whoever clicks, so it must
never serve anything but a developer's own machine. Production logs in at its real issuer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from deploy.embedded.dev_users import DevUser
from subsidy.identity.claims import ROLE_NAMES_ZH
from subsidy.identity.local_issuer import LocalIssuer

CODE_TTL_S = 60.0
TOKEN_TTL_S = 8 * 3600  # one working day
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_PKCE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
PROGRAM_TITLES = {"LG-AI-MODEL-2025": "龙岗区调用模型开发应用扶持", "SZ-GOVAI-SCENARIO-2025": "深圳市政务人工智能开放场景应用专项补贴"}


@dataclass(frozen=True)
class _Grant:
    user: DevUser
    client_id: str
    redirect_uri: str
    challenge: str
    expires: float


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"cache-control": "no-store"})


def _loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS


def login_router(issuer: LocalIssuer, users: Iterable[DevUser], *, token_ttl_s: int = TOKEN_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> APIRouter:
    api = APIRouter(tags=["development login"])
    people = {user.subject: user for user in users}
    grants: dict[str, _Grant] = {}

    def refuse_page(message: str) -> HTMLResponse:
        return HTMLResponse(_page("无法登录", f'<p class="err">{html.escape(message)}</p>'), status_code=400)

    def check_request(response_type: str, client_id: str, redirect_uri: str, code_challenge: str,
                      code_challenge_method: str) -> str | None:
        if response_type != "code":
            return "仅支持授权码模式（response_type=code）"
        if not client_id:
            return "缺少 client_id"
        if not _loopback(redirect_uri):
            return "开发登录只回跳本机地址（redirect_uri 须为 127.0.0.1 或 localhost）"
        if code_challenge_method != "S256" or not _PKCE.match(code_challenge):
            return "须使用 PKCE（code_challenge_method=S256）"
        return None

    @api.get("/authorize", response_class=HTMLResponse, summary="Development login: pick a test official")
    async def authorize_page(
        response_type: str = Query(""), client_id: str = Query(""), redirect_uri: str = Query(""),
        state: str = Query(""), code_challenge: str = Query(""), code_challenge_method: str = Query(""),
    ) -> HTMLResponse:
        problem = check_request(response_type, client_id, redirect_uri, code_challenge, code_challenge_method)
        if problem:
            return refuse_page(problem)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
            for name, value in (("client_id", client_id), ("redirect_uri", redirect_uri), ("state", state),
                                ("code_challenge", code_challenge), ("code_challenge_method", code_challenge_method))
        )
        sections = []
        for program in sorted({p for u in people.values() for p in u.programs if len(u.programs) == 1}):
            members = [u for u in people.values() if u.programs == (program,)]
            sections.append(_section(f"{PROGRAM_TITLES.get(program, program)}（{program}）", members, hidden))
        shared = [u for u in people.values() if len(u.programs) != 1]
        if shared:
            sections.append(_section("跨项目", shared, hidden))
        body = ('<p class="hint">开发环境登录：选择一位测试人员，即以其身份登录管理后台。'
                '此页面仅在本机嵌入式环境提供，生产环境使用统一身份认证平台。</p>' + "".join(sections))
        return HTMLResponse(_page("开发环境登录 · 选择测试人员", body), headers={"cache-control": "no-store"})

    @api.post("/authorize", summary="Development login: the official picked")
    async def authorize_pick(
        subject: str = Form(...), client_id: str = Form(...), redirect_uri: str = Form(...), state: str = Form(""),
        code_challenge: str = Form(...), code_challenge_method: str = Form(...),
    ) -> Any:
        problem = check_request("code", client_id, redirect_uri, code_challenge, code_challenge_method)
        user = people.get(subject)
        if problem or user is None:
            return refuse_page(problem or "没有这位测试人员")
        now = clock()
        for stale in [c for c, g in grants.items() if g.expires < now]:
            del grants[stale]
        code = secrets.token_urlsafe(32)
        grants[code] = _Grant(user, client_id, redirect_uri, code_challenge, now + CODE_TTL_S)
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode({'code': code, 'state': state})}", status_code=303)

    @api.post("/token", summary="Development login: a code and its PKCE verifier for an access token")
    async def token(
        grant_type: str = Form(""), code: str = Form(""), redirect_uri: str = Form(""), client_id: str = Form(""),
        code_verifier: str = Form(""),
    ) -> JSONResponse:
        if grant_type != "authorization_code":
            return _oauth_error("unsupported_grant_type", "only authorization_code")
        grant = grants.pop(code, None)  # single use: gone whatever happens next
        if grant is None or grant.expires < clock():
            return _oauth_error("invalid_grant", "unknown, used or expired code")
        if grant.redirect_uri != redirect_uri or grant.client_id != client_id:
            return _oauth_error("invalid_grant", "redirect_uri or client_id differs from the authorization request")
        if not _PKCE.match(code_verifier) or not hmac.compare_digest(s256(code_verifier), grant.challenge):
            return _oauth_error("invalid_grant", "code_verifier does not match the code_challenge")
        user = grant.user
        access = issuer.mint(subject=user.subject, roles=user.roles, programs=user.programs, name=user.name,
                             window=user.window, ttl_s=token_ttl_s)
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": token_ttl_s},
                            headers={"cache-control": "no-store", "pragma": "no-cache"})

    return api


def _section(title: str, users: list[DevUser], hidden: str) -> str:
    rows = "".join(
        f'<tr><td>{html.escape(u.name)}</td><td class="mono">{html.escape(u.subject)}</td><td>{html.escape("、".join(ROLE_NAMES_ZH[r] for r in u.roles))}</td>'
        f'<td>{html.escape(u.window or "—")}</td><td>{html.escape(u.duty)}</td>'
        f'<td><form method="post" action="authorize">{hidden}'
        f'<input type="hidden" name="subject" value="{html.escape(u.subject)}">'
        f'<button type="submit" data-subject="{html.escape(u.subject)}">以此身份登录</button></form></td></tr>'
        for u in users
    )
    return (f'<h2>{html.escape(title)}</h2><table><colgroup><col style="width:15%"><col style="width:15%"><col style="width:16%"><col style="width:17%"><col><col style="width:120px"></colgroup><thead><tr><th>姓名</th><th>账号</th><th>角色</th><th>窗口</th><th>职责</th>'
            f'<th></th></tr></thead><tbody>{rows}</tbody></table>')


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>{html.escape(title)}</title>
<style>
body{{margin:0;font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;
background:#f0f2f5;color:#303133;font-size:14px}}
header{{background:#304156;color:#fff;padding:14px 24px;font-size:18px}}
main{{max-width:1000px;margin:20px auto;background:#fff;padding:20px 24px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.08)}}
h2{{font-size:15px;margin:22px 0 8px;color:#303133;border-left:3px solid #409eff;padding-left:8px}}
table{{width:100%;border-collapse:collapse;table-layout:fixed}}.mono{{font-family:monospace;font-size:12px;color:#606266}}th,td{{border-bottom:1px solid #ebeef5;padding:7px 8px;text-align:left}}
th{{background:#f5f7fa;color:#606266;font-weight:normal}}
button{{background:#409eff;color:#fff;border:0;border-radius:3px;padding:5px 12px;cursor:pointer;font:inherit}}
button:hover{{background:#66b1ff}}.hint{{color:#909399}}.err{{color:#f56c6c}}
</style></head><body><header>深圳市人工智能资助平台 · 统一身份认证（开发环境）</header><main>{body}</main></body></html>"""
