"""Running the platform's own processes (`subsidy run ...`) in tests, as real child processes."""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import multiprocessing.context
import multiprocessing.process
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.embedded.processes import free_port
from tests.support import fork_server


def get_health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


# Readiness is polled quickly at first (a process that is already up answers within
# milliseconds), then less often, so a slow start does not cost a fixed 0.3 s per poll.
POLL_FIRST_S, POLL_MAX_S = 0.05, 0.25


@contextmanager
def running_service(name: str, env: dict[str, str], log_file: Path, timeout: float = 60) -> Iterator[int]:
    """Start `subsidy run NAME`, wait until /health answers 200, yield its port; SIGTERM at the end
    and require a clean exit."""
    with running_services({name: (env, log_file)}, timeout=timeout) as ports:
        yield ports[name]


@contextmanager
def running_services(specs: dict[str, tuple[dict[str, str], Path]], timeout: float = 60,
                     ports: dict[str, int] | None = None) -> Iterator[dict[str, int]]:
    """Start several `subsidy run NAME` processes at once (NAME -> (env, log file)), wait until each
    /health answers 200 (within `timeout` per process), yield their ports; at the end SIGTERM them all and require clean exits and
    no personal data in their logs, as `running_service` does for one. Starting them together
    overlaps their imports and connection set-up instead of waiting for each in turn. `ports` may
    fix a process's port beforehand (so another process's environment can name it)."""
    stop_shared_services()  # an idle shared platform would take this one's events and tasks
    ports = {name: (ports or {}).get(name) or free_port() for name in specs}
    procs: dict[str, Process] = {}
    failure: BaseException | None = None
    try:
        for name, (env, log_file) in specs.items():
            procs[name] = start_process(["cli.main", "run", name],
                                        {**os.environ, **env, "HTTP_PORT": str(ports[name]), "LOG_FORMAT": "json"}, log_file)
        # Each process keeps the budget it had when they were started one after another: started
        # together on a busy machine, they share its cores, so the wait is `timeout` per process.
        deadline = time.monotonic() + timeout * len(specs)
        pending, pause = set(specs), POLL_FIRST_S
        while pending:
            for name in sorted(pending):
                if get_health(ports[name])[0] == 200:
                    pending.discard(name)
                elif procs[name].poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{name} did not become healthy:\n{specs[name][1].read_text()[-3000:]}")
            if pending:
                time.sleep(pause)
                pause = min(pause * 1.5, POLL_MAX_S)
        yield ports
    except BaseException as exc:
        failure = exc
        raise
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=30) for name, proc in procs.items()}
        if failure is None:
            for name, code in codes.items():
                log_file = specs[name][1]
                assert code == 0, f"{name} exited with {code}:\n{log_file.read_text()[-3000:]}"
                assert_no_personal_data(log_file)


# --- starting a process -------------------------------------------------------------------------

class Process(Protocol):
    """What the tests use of a started process (a `subprocess.Popen`, or a `Forked` one)."""

    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


def start_process(module_and_args: list[str], env: dict[str, str], log_file: Path) -> Process:
    """`python -m MODULE ARGS...` with `env` (the whole environment), stdout and stderr to `log_file`:
    forked from this test process's fork server (the libraries already imported, ~1.3 s of CPU less
    per start: tests/support/fork_server.py), or with `SUBSIDY_TEST_FORK=0` started from scratch."""
    if os.environ.get("SUBSIDY_TEST_FORK", "1") == "0":
        with open(log_file, "wb") as log:
            return subprocess.Popen([sys.executable, "-m", *module_and_args], env=env, stdout=log, stderr=subprocess.STDOUT)
    # daemon: still running when the tests end, it is stopped (SIGTERM) rather than waited for.
    child = _fork_context().Process(target=fork_server.run, args=(module_and_args, env, os.getcwd(), str(log_file)),
                                   name=" ".join(module_and_args), daemon=True)
    child.start()
    return Forked(child)


@functools.cache
def _fork_context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    # "__main__": the test runner's own script once in the server, not again in every child.
    context.set_forkserver_preload([*fork_server.PRELOAD, "tests.support.fork_server", "__main__"])
    return context


class Forked:
    """A process started by the fork server, with `subprocess.Popen`'s names for what the tests use."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
        return self.process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.process.exitcode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass  # ended meanwhile

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)




@dataclass
class _Shared:
    """The processes `shared_services` left running for the next test."""

    key: Hashable
    ports: dict[str, int]
    logs: dict[str, Path]  # those of the test that started them
    stop: ExitStack


_shared: _Shared | None = None


@contextmanager
def shared_services(key: Hashable, specs: dict[str, tuple[dict[str, str], Path]],
                    ports: dict[str, int] | None = None) -> Iterator[tuple[dict[str, int], dict[str, Path]]]:
    """`running_services(specs)`, left running at the end for the next test that asks for the same
    `key` (the same processes with the same environment): a test of the files that share a platform
    (tests/conftest.py SHARED_PLATFORM_FILES) gets the previous one's processes instead of starting
    its own. They are stopped, with `running_services`' checks (clean exit, no personal data in
    their logs), when a test asks for another key, when any test starts processes of its own, after
    the last test of those files (tests/conftest.py `pytest_runtest_teardown`), and when the test
    using them fails. Yields their ports and log files (those of the test that started them)."""
    global _shared
    if _shared is None or _shared.key != key:
        stop_shared_services()
        stack = ExitStack()
        started = stack.enter_context(running_services(specs, ports=ports))
        _shared = _Shared(key, started, _logs(specs), stack)
    try:
        yield _shared.ports, _shared.logs
    except BaseException:
        stop_shared_services(failed=True)
        raise


@contextmanager
def _with_logs(services: AbstractContextManager[dict[str, int]],
               specs: dict[str, tuple[dict[str, str], Path]]) -> Iterator[tuple[dict[str, int], dict[str, Path]]]:
    """`running_services(specs)`'s ports with the log files, as `shared_services` yields them."""
    with services as started:
        yield started, _logs(specs)


def _logs(specs: dict[str, tuple[dict[str, str], Path]]) -> dict[str, Path]:
    return {name: log for name, (_, log) in specs.items()}


def own_or_shared_services(specs: dict[str, tuple[dict[str, str], Path]], *, shared_key: Hashable | None = None,
                           ports: dict[str, int] | None = None,
                           ) -> AbstractContextManager[tuple[dict[str, int], dict[str, Path]]]:
    """The test's own processes (`running_services`), or with a `shared_key` the shared ones
    (`shared_services`); either way their ports and log files."""
    if shared_key is not None:
        return shared_services(shared_key, specs, ports=ports)
    return _with_logs(running_services(specs, ports=ports), specs)


def env_key(env: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    """`env` as part of a key of shared processes: a programs directory stands for its content (each
    test writes its copy under its own tmp_path; two copies with the same policy are the same programs)."""
    def value(name: str, given: str) -> str:
        if name != "SUBSIDY_PROGRAMS_DIR":
            return given
        digest = hashlib.sha256()
        for path in sorted(Path(given).glob("*.toml")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return f"programs:{digest.hexdigest()}"
    return tuple(sorted((name, value(name, given)) for name, given in (env or {}).items()))


def stop_shared_services(*, failed: bool = False) -> None:
    """Stop the processes `shared_services` left running, if any (checking them unless `failed`)."""
    global _shared
    if _shared is None:
        return
    stack, _shared = _shared.stop, None
    if failed:
        stack.__exit__(AssertionError, AssertionError("the test using them failed"), None)
    else:
        stack.close()


def assert_no_personal_data(log_file: Path) -> None:
    """No resident ID or mobile number of the test data appears unmasked in a log."""
    from tests.fixtures import events

    log = log_file.read_text(errors="replace")
    for raw in events.PERSONAL_VALUES:
        assert raw not in log, f"unmasked personal data in {log_file}"
