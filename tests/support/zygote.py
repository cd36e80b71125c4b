"""A Python that has imported the platform's libraries once and forks `subsidy run NAME` for the tests.

Each service process spent ~1.3 s of CPU importing FastAPI, Temporal's client and worker, FastStream,
aiokafka and the rest before it did anything, and a test run starts dozens of them. Forked from this
process, each one is still a process of its own running `python -m cli.main run NAME` with its own
environment, log file and signals; it only finds the third-party modules already imported. The
platform's own modules (cli, services, subsidy, workflows) are not: some read the environment as
they are imported, so each child imports them itself.

Protocol (one JSON object per line): the test process writes {"id", "argv", "env", "cwd", "log"} on
our stdin; we answer {"id", "pid"} (or {"id", "error"}) on stdout, and {"exit": pid, "code": code}
when a child ends (the code as `subprocess` gives it: negative for a signal). When stdin closes (the
test process ended, however it ended), the children still running are killed and we exit.
`tests/support/processes.py` is the other side.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import select
import signal
import sys
import traceback
from typing import Any

# Every service imports these; `python -X importtime -m cli.main run NAME` shows where the time goes.
PRELOAD = (
    "fastapi", "fastapi.routing", "fastapi.responses", "fastapi.security", "fastapi.templating",
    "starlette.staticfiles", "uvicorn", "uvicorn.config", "uvicorn.server", "uvicorn.main",
    "uvicorn.loops.uvloop", "uvicorn.lifespan.on", "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto", "uvloop", "faststream", "faststream.kafka", "aiokafka",
    "aiokafka.admin", "temporalio.client", "temporalio.worker", "temporalio.workflow",
    "temporalio.activity", "temporalio.converter", "temporalio.worker.workflow_sandbox", "asyncpg",
    "pydantic", "pydantic_settings", "structlog", "httpx", "jwt",
    "cryptography.hazmat.primitives.ciphers.aead", "cryptography.hazmat.primitives.asymmetric.ec",
    "jinja2", "python_multipart", "reportlab.pdfgen.canvas", "reportlab.platypus", "PIL.Image",
    "xlsxwriter", "zoneinfo", "email.parser", "http.client",
)


def main() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a child imports what it needs itself
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    children: set[int] = set()

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message).encode() + b"\n")
        answers.flush()

    try:
        while True:
            readable, _, _ = select.select([requests], [], [], 0.05)
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                children.discard(pid)
                answer({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
            if not readable:
                continue
            line = requests.readline()
            if not line:
                break
            request = json.loads(line)
            try:
                pid = _fork(request)
            except OSError as exc:
                answer({"id": request["id"], "error": str(exc)})
                continue
            children.add(pid)
            answer({"id": request["id"], "pid": pid})
    finally:  # stdin closed, or Ctrl-C: no process of ours outlives the tests
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _fork(request: dict[str, Any]) -> int:
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(log)
        return pid
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        # The streams a Python started with these descriptors would have (ours are pipes to the test).
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding=sys.stdin.encoding)
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding=sys.stdout.encoding,
                                      errors=sys.stdout.errors)
        sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding=sys.stderr.encoding,
                                      errors="backslashreplace", line_buffering=True)
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # as `python -m` has it
        sys.argv = [request["argv"][0], *request["argv"][1:]]
        import runpy

        try:
            runpy.run_module(request["argv"][0], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    raise AssertionError("unreachable")


if __name__ == "__main__":
    main()
