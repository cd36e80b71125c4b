"""Tokens for tests, from the local issuer of the stack's run directory (what `subsidy token`
prints), and the HTTP calls that carry them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from email.message import Message
from pathlib import Path
from typing import Any

from subsidy.identity.claims import StaffRole
from subsidy.identity.local_issuer import LocalIssuer


def issuer(stack_run_dir: Path) -> LocalIssuer:
    env = json.loads((Path(stack_run_dir) / "stack.json").read_text())["env"]
    return LocalIssuer.for_run_dir(Path(stack_run_dir), env["OIDC_ISSUER"], env.get("OIDC_AUDIENCE", "subsidy-platform"))


def mint(
    stack_run_dir: Path,
    role: StaffRole | str | Iterable[StaffRole | str],
    programs: Iterable[str] = (),
    *,
    user: str = "test-official",
    name: str | None = None,
    window: str | None = None,
    ttl_s: int = 600,
) -> str:
    roles = [role] if isinstance(role, str) else list(role)
    return issuer(stack_run_dir).mint(subject=user, roles=roles, programs=programs, name=name, window=window, ttl_s=ttl_s)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def http_get(port: int, path: str, token: str | None = None) -> tuple[int, bytes, Message]:
    """Status, raw body and headers of GET http://127.0.0.1:<port><path>, with the token if any."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=bearer(token))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def get_json(port: int, path: str, token: str | None = None) -> tuple[int, Any]:
    status, body, _ = http_get(port, path, token)
    return status, json.loads(body or b"null")
