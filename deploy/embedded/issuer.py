"""The embedded stack's local OIDC issuer: a small process on loopback that publishes the signing
key of the run directory (DESIGN.md, "Identity").

    python -m deploy.embedded.issuer --run-dir DIR --port P [--host H] [--issuer-url URL]

serves, at `http://127.0.0.1:P` (the issuer URL tokens carry as `iss`, unless `--issuer-url`
names the address others reach it at, as in docker-compose.yml):

    GET /.well-known/openid-configuration   the discovery document
    GET /jwks.json                          the public key (ES256) services verify tokens with
    GET /health                             200 once serving

The private key stays in `DIR/identity/signing-key.pem` (made once by `subsidy stack up`); tokens
are minted from it by `subsidy token` and by the operator commands, never over HTTP. Production
runs no such process: the services verify the tokens of the OIDC issuer the settings name.

The console's development login page (a later issue) belongs here: a form that mints a token
for a chosen test official from this same key and hands it to the console. Only on loopback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from deploy.embedded.dev_users import DEV_USERS
from deploy.embedded.issuer_login import login_router
from subsidy.identity.local_issuer import LocalIssuer
from subsidy.logging import configure_logging

HOST = "127.0.0.1"


def issuer_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def create_app(issuer: LocalIssuer) -> FastAPI:
    app = FastAPI(title="subsidy local issuer (embedded stack only)", docs_url=None, redoc_url=None)

    @app.get("/.well-known/openid-configuration")
    async def openid_configuration() -> dict[str, Any]:
        return issuer.openid_configuration()

    @app.get("/jwks.json")
    async def jwks() -> dict[str, Any]:
        return issuer.jwks()

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"service": "issuer", "status": "ok", "issuer": issuer.issuer}

    # The console's development login: GET/POST /authorize, POST /token (PKCE), minted from `issuer`.
    app.include_router(login_router(issuer, DEV_USERS))
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.embedded.issuer", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="the stack's run directory (its identity/ key)")
    parser.add_argument("--port", type=int, required=True, help="port to serve on")
    parser.add_argument("--host", default=HOST, help="address to bind (default loopback)")
    parser.add_argument("--issuer-url", help="the issuer's URL, its tokens' `iss` (default http://127.0.0.1:PORT)")
    args = parser.parse_args(argv)
    configure_logging("issuer", level="INFO", fmt="json")
    issuer = LocalIssuer.for_run_dir(Path(args.run_dir).resolve(), (args.issuer_url or issuer_url(args.port)).rstrip("/"))
    config = uvicorn.Config(create_app(issuer), host=args.host, port=args.port, log_config=None, access_log=False)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
