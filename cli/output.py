"""What the CLI prints about the stack, without its secrets.

Every URL the commands print goes through `redact_url` (the password of `DATABASE_URL`, or of any
other URL with credentials, becomes `***`); every setting whose name says it is a key or a secret
is replaced as a whole. The secrets stay in `<run dir>/stack.json` (mode 0600), where the platform's
processes read them.
"""

from __future__ import annotations

import re
from pathlib import Path

HIDDEN = "<secret, in stack.json>"
SECRET_NAMES = re.compile(r"KEY|SECRET|PASSWORD|TOKEN", re.IGNORECASE)
# scheme://user:password@host  ->  scheme://user:***@host (the user name is not a secret)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
# ...?password=...&  (libpq accepts the password as a query parameter too)
_QUERY_PASSWORD = re.compile(r"(?P<name>[?&](?:password|sslpassword)=)[^&#\s]*", re.IGNORECASE)


def redact_url(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@" if m["password"] else m[0], text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['name']}***", text)


def redacted(env: dict[str, str]) -> dict[str, str]:
    """The stack's settings as they may be printed: keys and secrets hidden, URLs without passwords."""
    return {name: HIDDEN if SECRET_NAMES.search(name) else redact_url(value) for name, value in env.items()}


def next_steps(env: dict[str, str], ports: dict[str, int], run_dir: Path, temporal_ui_port: int | None) -> list[str]:
    """What a newcomer does once `subsidy up` is healthy (printed after the summary)."""
    review = f"http://127.0.0.1:{ports['review']}" if "review" in ports else "(review is not running)"
    issuer = env.get("OIDC_ISSUER", "(no local issuer)")
    temporal_ui = (f"http://127.0.0.1:{temporal_ui_port}/namespaces/{env.get('TEMPORAL_NAMESPACE', 'default')}/workflows"
                   if temporal_ui_port else "(not recorded: the dev server's UI port is in stack.json once the stack started it)")
    from deploy.embedded.stack import default_run_dir

    run_dir_arg = "" if run_dir.resolve() == default_run_dir() else f" --run-dir {run_dir}"
    return [
        "",
        "Next steps (in another terminal; this one keeps the platform running):",
        f"  console      {review}/console/",
        f"               log in with the local issuer's development login ({issuer}): pick an official, no password",
        f"  Temporal UI  {temporal_ui}",
        f"  demo         .venv/bin/subsidy demo{run_dir_arg}            sample applications of both programs, one bad event",
        f"               .venv/bin/subsidy demo --drive{run_dir_arg}    then every official's step, to the public notice",
        f"  a token      .venv/bin/subsidy token{run_dir_arg} --role lg_online_reviewer --user lg-rev-01 --program LG-AI-MODEL-2025",
        f"               curl -H \"Authorization: Bearer $TOKEN\" {review}/api/tasks",
        f"  status       .venv/bin/subsidy status{run_dir_arg} <application no>;  .venv/bin/subsidy dlq list",
        f"  logs         {run_dir / 'services'}/<intake|review|notify|worker>.log (JSON); the stack's: `subsidy stack status`",
        "  Secrets (webhook and personal-data keys) are not printed: they are in stack.json (mode 0600).",
    ]
