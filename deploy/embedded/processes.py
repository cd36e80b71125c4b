"""Starting, probing and stopping the stack's child processes, by pid, with bounded waits.

Every process the stack starts is recorded with its pid and its start time (from /proc), so
`stack down` stops only what it started: a pid reused by an unrelated process is left alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A component could not be prepared or started. The message names the component,
    the cause and the log file to read."""

    def __init__(self, component: str, cause: str, log_file: Path | None = None):
        self.component = component
        self.cause = cause
        self.log_file = log_file
        where = f" (log: {log_file})" if log_file else ""
        super().__init__(f"{component}: {cause}{where}")


@dataclass(frozen=True)
class ProcessRecord:
    """What `stack down` needs to stop a process and be sure it is ours."""

    pid: int
    start_ticks: int  # field 22 of /proc/<pid>/stat: survives nothing but this very process
    stop_signal: int = signal.SIGTERM

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start_ticks": self.start_ticks, "stop_signal": int(self.stop_signal)}

    @classmethod
    def from_json(cls, raw: dict[str, int]) -> ProcessRecord:
        return cls(pid=raw["pid"], start_ticks=raw["start_ticks"], stop_signal=raw.get("stop_signal", signal.SIGTERM))

    def is_alive(self) -> bool:
        return process_start_ticks(self.pid) == self.start_ticks


def process_start_ticks(pid: int) -> int | None:
    """The start time of a live process in clock ticks since boot, or None if it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def spawn(
    component: str,
    argv: list[str],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start a detached process (own session, so Ctrl-C in the terminal does not reach it)
    with stdout and stderr appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                user=user,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise StackError(component, f"executable not found: {argv[0]}", log_file) from exc
    ticks = None
    for _ in range(50):
        ticks = process_start_ticks(proc.pid)
        if ticks is not None:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    if ticks is None:
        raise StackError(component, f"exited at once with code {proc.poll()}", log_file)
    return proc, ProcessRecord(pid=proc.pid, start_ticks=ticks, stop_signal=stop_signal)


def stop(record: ProcessRecord, *, timeout: float = 30.0) -> str:
    """Stop a recorded process: its stop signal, a bounded wait, then SIGKILL. Returns what happened."""
    if not record.is_alive():
        return "not running"
    try:
        os.kill(record.pid, record.stop_signal)
    except ProcessLookupError:
        return "not running"
    if wait_until(lambda: not record.is_alive(), timeout=timeout, interval=0.1):
        return "stopped"
    try:
        os.killpg(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(record.pid, signal.SIGKILL)
    wait_until(lambda: not record.is_alive(), timeout=5, interval=0.1)
    return "killed after timeout"


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text[-lines:])
