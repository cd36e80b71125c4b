"""The README's promises, checked through the `subsidy` command itself."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from deploy.embedded import kafka
from deploy.embedded.processes import process_start_ticks

pytestmark = pytest.mark.integration
SUBSIDY = [sys.executable, "-m", "cli.main"]  # what the `subsidy` entry point runs


def _subsidy(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([*SUBSIDY, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and process_start_ticks(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


def test_up_shows_all_four_processes_healthy_and_ctrl_c_stops_them(stack) -> None:
    env = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "SUBSIDY_RUN_DIR": str(stack.run_dir)}
    # Started as a background job of a non-interactive shell (or `nohup`) starts it: with SIGINT
    # ignored, which a process keeps across exec unless it sets its own handler. Ctrl-C must still stop it.
    started_with_sigint_ignored = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]
    proc = subprocess.Popen([*started_with_sigint_ignored, *SUBSIDY, "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while not any("Secrets (webhook and personal-data keys) are not printed" in line for line in lines):
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line and time.monotonic() < deadline, "subsidy up did not report healthy:\n" + "".join(lines)
            lines.append(line)
        health = _subsidy("health", "--run-dir", str(stack.run_dir))
        assert health.returncode == 0, health.stdout + health.stderr
        assert sorted(json.loads(row)["process"] for row in health.stdout.splitlines()) == [
            "intake", "notify", "review", "worker"]
        # The read commands find the processes `up` started and ask their APIs with an operator token.
        status = _subsidy("status", "LG2025-000000", "--run-dir", str(stack.run_dir))
        assert status.returncode == 1 and "error: no application LG2025-000000" in status.stderr, status.stderr
        sms = _subsidy("sms", "list", "--limit", "5", "--run-dir", str(stack.run_dir))
        assert sms.returncode == 0, sms.stderr
        # The next steps name the Temporal UI, and it answers there.
        ui = re.search(r"Temporal UI  (http://127\.0\.0\.1:\d+)/", "".join(lines))
        with urllib.request.urlopen(ui[1] + "/", timeout=30) as page:  # type: ignore[index]
            ui_status = page.status
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            _, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            # The test fails, but `up` and its services must not outlive it: left running, they stay
            # in the stack's consumer groups and task queues and take later tests' events.
            for pid in [int(p) for p in re.findall(r"pid (\d+)", "".join(lines))]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, stderr[-3000:]
    out = "".join(lines)
    assert "Platform is up and healthy" in out
    review_port = re.search(r"review +pid \d+ +http://127\.0\.0\.1:(\d+)/health", out)[1]  # type: ignore[index]
    assert f"console      http://127.0.0.1:{review_port}/console/" in out and "development login" in out
    assert ".venv/bin/subsidy demo " in out and ".venv/bin/subsidy demo --drive" in out and "subsidy token" in out
    assert f"{stack.run_dir / 'services'}/<intake|review|notify|worker>.log" in out
    assert ui_status == 200
    assert not re.search(r"://[^/\s:@]+:[^*/\s@][^/\s@]*@", out), "a URL with its password was printed"
    for service in ("intake", "review", "notify"):
        assert f"{service} ok (db subsidy, kafka ok)" in out
    pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
    assert len(pids) == 4
    assert all(process_start_ticks(pid) is None for pid in pids), "a service process outlived `subsidy up`"
    # The stack was running before `up`, so `up` leaves it running.
    status = json.loads(_subsidy("stack", "status", "--run-dir", str(stack.run_dir)).stdout)
    assert {c["state"] for c in status["components"].values()} == {"running"}


def test_stack_up_is_idempotent_and_down_leaves_no_process() -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="subsidy-cli-stack-"))
    try:
        first = _subsidy("stack", "up", "--run-dir", str(run_dir))
        assert first.returncode == 0, first.stderr[-3000:]
        env = json.loads(first.stdout)
        assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} <= set(env)
        assert env["OIDC_JWKS_URL"] == env["OIDC_ISSUER"] + "/jwks.json"  # the local issuer
        key_file = run_dir / "identity" / "signing-key.pem"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert env["PERSONAL_DATA_HASH_KEY"] == "<secret, in stack.json>"  # generated, never printed
        before = json.loads(_subsidy("stack", "status", "--run-dir", str(run_dir)).stdout)["components"]
        assert set(before) == {"postgres", "kafka", "temporal", "issuer"}
        # The broker maps the class archive the install step recorded (best effort there: where it
        # could not be recorded there is nothing to map), rather than loading its classes from the jars.
        archive = kafka.class_archive(kafka.require_jdk())
        if archive.exists():
            assert str(archive) in Path(f"/proc/{before['kafka']['pid']}/maps").read_text()
        key_before = key_file.read_bytes()

        second = _subsidy("stack", "up", "--run-dir", str(run_dir))
        assert second.returncode == 0, second.stderr[-3000:]
        assert second.stderr.count("already running") == 4  # postgres, kafka, temporal, issuer
        assert key_file.read_bytes() == key_before  # tokens stay valid across `up`
        after = json.loads(_subsidy("stack", "status", "--run-dir", str(run_dir)).stdout)["components"]
        assert {k: v["pid"] for k, v in after.items()} == {k: v["pid"] for k, v in before.items()}
        assert _processes_mentioning(str(run_dir)), "the stack's processes name their run directory"

        down = _subsidy("stack", "down", "--run-dir", str(run_dir))
        assert down.returncode == 0, down.stderr
        assert all(process_start_ticks(c["pid"]) is None for c in before.values())
        assert _processes_mentioning(str(run_dir)) == []
        status = json.loads(_subsidy("stack", "status", "--run-dir", str(run_dir)).stdout)
        assert {c["state"] for c in status["components"].values()} == {"stopped"}
    finally:
        _subsidy("stack", "down", "--run-dir", str(run_dir), "--purge")
        shutil.rmtree(run_dir, ignore_errors=True)


def test_a_taken_port_is_a_clear_error_naming_the_component(tmp_path: Path) -> None:
    import socket

    run_dir = Path(tempfile.mkdtemp(prefix="subsidy-cli-port-"))
    try:
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            (run_dir / "stack.json").write_text(json.dumps({"ports": {"postgres": port}}))
            done = _subsidy("stack", "up", "--run-dir", str(run_dir), timeout=60)
        assert done.returncode == 1
        assert f"error: postgres: port {port} (postgres) is taken" in done.stderr
    finally:
        _subsidy("stack", "down", "--run-dir", str(run_dir), "--purge")
        shutil.rmtree(run_dir, ignore_errors=True)
