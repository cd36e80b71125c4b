"""The embedded stack's identity on real processes: the local issuer serves its discovery document
and JWKS on loopback; a token printed by `subsidy token` verifies against that JWKS (over HTTP,
as the services verify); the command refuses what it cannot sign for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from subsidy.identity import InvalidToken, StaffRole, TokenVerifier
from subsidy.identity.verifier import http_jwks_fetcher

pytestmark = pytest.mark.integration
LG = "LG-AI-MODEL-2025"


def _fetch(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


def _subsidy(stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **stack.env})


def _verifier(stack) -> TokenVerifier:
    return TokenVerifier(issuer=stack.env["OIDC_ISSUER"], audience=stack.env["OIDC_AUDIENCE"],
                         fetch_jwks=http_jwks_fetcher(stack.env["OIDC_JWKS_URL"]))


async def test_the_local_issuer_serves_its_discovery_document_and_jwks(stack) -> None:
    issuer = stack.env["OIDC_ISSUER"]
    assert issuer.startswith("http://127.0.0.1:") and stack.env["OIDC_AUDIENCE"] == "subsidy-platform"
    discovery = _fetch(f"{issuer}/.well-known/openid-configuration")
    assert discovery["issuer"] == issuer and discovery["jwks_uri"] == stack.env["OIDC_JWKS_URL"] == f"{issuer}/jwks.json"
    keys = _fetch(stack.env["OIDC_JWKS_URL"])["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [("EC", "ES256", "sig")]
    assert "d" not in keys[0]  # the public half only


async def test_a_token_from_subsidy_token_verifies_against_the_stacks_jwks(stack) -> None:
    printed = _subsidy(stack, "token", "--role", "window_clerk", "--user", "lg-w03-01", "--name", "李娜",
                       "--program", LG, "--window", "LG-W03", "--ttl", "120", "--run-dir", str(stack.run_dir))
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    assert printed.stdout.count("\n") == 1 and token.count(".") == 2  # the token and nothing else on stdout
    principal = await _verifier(stack).verify(token)
    assert (principal.subject, principal.name, principal.roles, principal.programs, principal.window) == (
        "lg-w03-01", "李娜", frozenset({StaffRole.WINDOW_CLERK}), frozenset({LG}), "LG-W03")

    with pytest.raises(InvalidToken) as tampered:
        await _verifier(stack).verify(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert tampered.value.reason == "bad_signature"


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--role", "superuser", "--user", "x"], "invalid choice"),
        (["--role", "auditor", "--user", "x", "--program", "LG-NOPE-2025"], "unknown program"),
        (["--role", "auditor", "--user", "bad user"], "--user"),
        (["--role", "auditor", "--user", "x", "--ttl", "0"], "--ttl"),
    ],
)
async def test_subsidy_token_refuses_what_it_cannot_sign_for(stack, args: list[str], complaint: str) -> None:
    refused = _subsidy(stack, "token", *args, "--run-dir", str(stack.run_dir))
    assert refused.returncode == 2 and complaint in refused.stderr and refused.stdout == ""
