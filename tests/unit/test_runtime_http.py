"""The HTTP surface every service gets from subsidy/runtime.py, driven without servers (the app's
lifespan is not run, so nothing connects): /health before start, /openapi.json, the one error
shape `{"code", "message", "detail"}` for the framework's refusals and `ApiError`s, and routes
that need a token and the started resources."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from faststream.kafka import KafkaRouter

from subsidy.identity import TokenVerifier
from subsidy.identity.http import Authenticated
from subsidy.identity.local_issuer import LocalIssuer
from subsidy.runtime import ServiceDefinition, build_app
from subsidy.settings import PlatformSettings
from subsidy.web import ApiError, Started

ISSUER = "http://127.0.0.1:8400"


def routes() -> APIRouter:
    api = APIRouter()

    @api.get("/things/{thing}")
    async def thing(thing: str, principal: Authenticated, limit: int = Query(10, ge=1, le=100)) -> dict[str, Any]:
        if thing == "missing":
            raise ApiError(404, "unknown_thing", "未找到该事项", detail={"thing": thing})
        return {"thing": thing, "by": principal.actor_id, "limit": limit}

    @api.get("/stored")
    async def stored(principal: Authenticated, resources: Started) -> dict[str, Any]:
        return {"resources": str(resources)}

    return api


@pytest.fixture
def issuer(tmp_path: Path) -> LocalIssuer:
    return LocalIssuer.for_run_dir(tmp_path, ISSUER)


@pytest.fixture
def app(issuer: LocalIssuer) -> FastAPI:
    definition = ServiceDefinition(name="probe", task_queue="subsidy-probe", router=KafkaRouter(), routers=lambda: [routes()])
    app = build_app(definition, PlatformSettings(oidc_issuer=ISSUER))

    async def jwks() -> dict[str, Any]:
        return issuer.jwks()

    app.state.verifier = TokenVerifier(issuer=ISSUER, audience="subsidy-platform", fetch_jwks=jwks)
    return app


async def call(app: FastAPI, path: str, token: str | None = None, method: str = "GET") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        return await client.request(method, path, headers=headers)


async def test_health_answers_503_until_the_lifespan_has_started_everything(app: FastAPI) -> None:
    response = await call(app, "/health")
    assert response.status_code == 503
    assert response.json() == {"service": "probe", "status": "unhealthy", "checks": {"startup": "error: not started"}}


async def test_the_openapi_document_names_the_service_and_its_routes_but_not_health(app: FastAPI) -> None:
    response = await call(app, "/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "subsidy probe"
    assert set(document["paths"]) == {"/things/{thing}", "/stored"}
    assert (await call(app, "/docs")).status_code == 404  # no bundled UI pages


async def test_every_refusal_has_a_code_a_chinese_message_and_a_detail(app: FastAPI, issuer: LocalIssuer) -> None:
    token = issuer.mint(subject="lg-rev-01", roles=["lg_online_reviewer"], programs=["LG-AI-MODEL-2025"])
    expired = issuer.mint(subject="lg-rev-01", roles=["lg_online_reviewer"], ttl_s=1, now=time.time() - 600)

    anonymous = await call(app, "/things/a")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["code"] == "unauthenticated" and anonymous.json()["message"] == "未登录或登录已失效，请重新登录"
    assert anonymous.json()["detail"]["reason"] == "missing_token"
    assert (await call(app, "/things/a", expired)).json()["detail"]["reason"] == "expired"

    assert (await call(app, "/things/missing", token)).json() == {
        "code": "unknown_thing", "message": "未找到该事项", "detail": {"thing": "missing"}}
    invalid = await call(app, "/things/a?limit=1000", token)
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_request"
    assert invalid.json()["message"] == "请求参数不正确" and invalid.json()["detail"][0]["loc"] == ["query", "limit"]
    assert "1000" not in invalid.text  # the offending input is not echoed
    nowhere = await call(app, "/nowhere", token)
    assert (nowhere.status_code, nowhere.json()["code"], nowhere.json()["message"]) == (404, "not_found", "未找到")
    wrong_method = await call(app, "/things/a", token, method="DELETE")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")

    ok = await call(app, "/things/a?limit=5", token)
    assert ok.status_code == 200 and ok.json() == {"thing": "a", "by": "staff:lg-rev-01", "limit": 5}


async def test_a_route_that_needs_the_resources_answers_503_while_the_service_starts(
    app: FastAPI, issuer: LocalIssuer
) -> None:
    token = issuer.mint(subject="auditor-1", roles=["auditor"], programs=["LG-AI-MODEL-2025"])
    response = await call(app, "/stored", token)
    assert response.status_code == 503 and response.json()["code"] == "starting"
    assert response.headers["retry-after"] == "1"
