"""How the operator commands reach the services on the embedded stack: through their HTTP APIs,
with a short-lived token minted from the run directory's local issuer.

The token is an auditor's (reads everything, changes nothing) for every program the platform
knows, subject `operator-cli`. The services' addresses are the ones `subsidy up` gave them
(`<run dir>/services/ports.json`), unless named with `--intake-url` / `--notify-url`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from subsidy.identity.claims import StaffRole
from subsidy.identity.local_issuer import AUDIENCE, KEY_FILE, LocalIssuer
from subsidy.programs import programs

OPERATOR_SUBJECT = "operator-cli"
OPERATOR_NAME = "运维命令行"
OPERATOR_TTL_S = 300


class OperatorError(Exception):
    """What the command says on stderr (exit 2): a missing stack, an unknown address."""


def stack_env(run_dir: Path) -> dict[str, str]:
    path = run_dir / "stack.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("env", {}))


def local_issuer(run_dir: Path, issuer_url: str | None = None) -> LocalIssuer:
    """The run directory's issuer, with the `iss` the stack's services verify (or `issuer_url`,
    where no stack.json records it, e.g. the compose file's issuer container)."""
    env = stack_env(run_dir)
    url = issuer_url or env.get("OIDC_ISSUER")
    if not url:
        raise OperatorError(f"no local issuer recorded in {run_dir}/stack.json: run `subsidy stack up` first")
    if not (run_dir / KEY_FILE).exists():
        raise OperatorError(f"no signing key in {run_dir / KEY_FILE}: run `subsidy stack up` first")
    return LocalIssuer.for_run_dir(run_dir, url.rstrip("/"), audience=env.get("OIDC_AUDIENCE") or AUDIENCE)


def operator_token(run_dir: Path) -> str:
    return local_issuer(run_dir).mint(
        subject=OPERATOR_SUBJECT,
        name=OPERATOR_NAME,
        roles=[StaffRole.AUDITOR],
        programs=sorted(programs()),
        ttl_s=OPERATOR_TTL_S,
    )


def service_url(run_dir: Path, service: str, explicit: str | None) -> str:
    if explicit:
        return explicit.rstrip("/")
    ports_file = run_dir / "services" / "ports.json"
    ports = json.loads(ports_file.read_text()) if ports_file.exists() else {}
    if service not in ports:
        raise OperatorError(
            f"no {service} process recorded in {ports_file} (started by `subsidy up`); name it with --{service}-url"
        )
    return f"http://127.0.0.1:{int(ports[service])}"


def get_json(url: str, token: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
    try:
        response = httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise OperatorError(f"{url}: {type(exc).__name__}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {"text": response.text[:500]}
    return response.status_code, body
