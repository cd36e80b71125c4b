"""The local issuer's development login: authorization code with PKCE (S256), single-use codes."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from deploy.embedded.dev_users import DEV_USERS, LG_WINDOWS, SZ_WINDOW
from deploy.embedded.issuer_login import CODE_TTL_S, login_router, s256
from subsidy.identity.claims import StaffRole
from subsidy.identity.local_issuer import LocalIssuer

REDIRECT = "http://127.0.0.1:9999/console/callback"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path):
    issuer = LocalIssuer.for_run_dir(tmp_path, "http://127.0.0.1:8400")
    clock = Clock()
    app = FastAPI()
    app.include_router(login_router(issuer, DEV_USERS, clock=clock))
    return TestClient(app), issuer, clock


def authorize(client: TestClient, verifier: str, subject: str = "lg-online-01", state: str = "st-1") -> str:
    params = {"response_type": "code", "client_id": "console", "redirect_uri": REDIRECT, "state": state,
              "code_challenge": s256(verifier), "code_challenge_method": "S256"}
    page = client.get("/authorize", params=params)
    assert page.status_code == 200 and "张敏" in page.text and "以此身份登录" in page.text
    picked = client.post("/authorize", data={**params, "subject": subject}, follow_redirects=False)
    assert picked.status_code == 303
    location = urlsplit(picked.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def exchange(client: TestClient, code: str, verifier: str, redirect_uri: str = REDIRECT):
    return client.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                       "client_id": "console", "code_verifier": verifier})


def test_a_picked_user_gets_a_token_with_their_claims_once(world) -> None:
    client, issuer, _ = world
    verifier = secrets.token_urlsafe(48)
    code = authorize(client, verifier, subject="lg-clerk-w03")
    answer = exchange(client, code, verifier)
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "lg-clerk-w03" and claims["roles"] == ["window_clerk"] and claims["window"] == "LG-W03"
    assert claims["iss"] == issuer.issuer and claims["programs"] == ["LG-AI-MODEL-2025"]
    again = exchange(client, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_wrong_verifier_burns_the_code(world) -> None:
    client, _, _ = world
    verifier = secrets.token_urlsafe(48)
    code = authorize(client, verifier)
    assert exchange(client, code, secrets.token_urlsafe(48)).json()["error"] == "invalid_grant"
    assert exchange(client, code, verifier).status_code == 400


def test_an_old_code_or_another_redirect_is_refused(world) -> None:
    client, _, clock = world
    verifier = secrets.token_urlsafe(48)
    code = authorize(client, verifier)
    clock.now += CODE_TTL_S + 1
    assert exchange(client, code, verifier).status_code == 400
    code = authorize(client, verifier)
    assert exchange(client, code, verifier, redirect_uri="http://127.0.0.1:9999/elsewhere").status_code == 400


@pytest.mark.parametrize("change", [
    {"code_challenge_method": "plain"}, {"code_challenge": ""}, {"response_type": "token"},
    {"redirect_uri": "https://evil.example.com/cb"},
])
def test_without_pkce_or_to_another_host_no_login_page(world, change) -> None:
    client, _, _ = world
    params = {"response_type": "code", "client_id": "console", "redirect_uri": REDIRECT, "state": "s",
              "code_challenge": s256(secrets.token_urlsafe(48)), "code_challenge_method": "S256", **change}
    page = client.get("/authorize", params=params)
    assert page.status_code == 400 and "以此身份登录" not in page.text


def test_one_user_per_role_program_and_window() -> None:
    assert {StaffRole(r) for u in DEV_USERS for r in u.roles} == set(StaffRole)
    windows = {u.window for u in DEV_USERS if u.window}
    assert windows == {*LG_WINDOWS, SZ_WINDOW}
    assert len([u for u in DEV_USERS if StaffRole.EXPERT in u.roles]) >= 3
    admins = {p for u in DEV_USERS if StaffRole.PROGRAM_ADMIN in u.roles for p in u.programs}
    assert admins == {"LG-AI-MODEL-2025", "SZ-GOVAI-SCENARIO-2025"}
    assert len({u.subject for u in DEV_USERS}) == len(DEV_USERS)
