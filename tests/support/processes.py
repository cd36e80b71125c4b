"""Running the platform's own processes (`subsidy run ...`) in tests, as real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.embedded.processes import free_port


def get_health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


@contextmanager
def running_service(name: str, env: dict[str, str], log_file: Path, timeout: float = 60) -> Iterator[int]:
    """Start `subsidy run NAME`, wait until /health answers 200, yield its port; SIGTERM at the end
    and require a clean exit."""
    port = free_port()
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", name],
            env={**os.environ, **env, "HTTP_PORT": str(port), "LOG_FORMAT": "json"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while get_health(port)[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not become healthy:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.3)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, f"{name} exited with {code}:\n{log_file.read_text()[-3000:]}"
    assert_no_personal_data(log_file)


def assert_no_personal_data(log_file: Path) -> None:
    """No resident ID or mobile number of the test data appears unmasked in a log."""
    from tests.fixtures import events

    log = log_file.read_text(errors="replace")
    for raw in events.PERSONAL_VALUES:
        assert raw not in log, f"unmasked personal data in {log_file}"
