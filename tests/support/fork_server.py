"""What the tests' fork server preloads, and what a service process forked from it runs.

Each service process spent ~1.3 s of CPU importing FastAPI, Temporal's client and worker, FastStream,
aiokafka and the rest before it did anything, and a test run starts dozens of them. The tests start
them from the standard library's fork server (`multiprocessing`'s "forkserver" context, set up in
`tests/support/processes.py`), which imports the libraries below once: each child is still a process
of its own running `python -m cli.main run NAME` with its own environment, log file and signals; it
only finds the third-party modules already imported. The platform's own modules (cli, services,
subsidy, workflows) are not: some read the environment as they are imported, so each child imports
them itself, after `run` has given it its environment.
"""

from __future__ import annotations

import atexit
import ctypes
import io
import os
import runpy
import signal
import sys

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

PR_SET_PDEATHSIG = 1


def run(argv: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: become `python -m ARGV...` with `env` (the whole environment), in `cwd`,
    stdout and stderr to `log`. A `SystemExit` gives the exit code, as it would to Python."""
    # Die with the fork server, which ends when the test process does (however it ends).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        os._exit(1)
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(null)
    os.close(descriptor)
    # The streams a Python started with these descriptors would have (the fork server's are the test's).
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.path[0] = cwd  # as `python -m` has it
    sys.argv = list(argv)
    try:
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
    finally:  # multiprocessing ends the child with os._exit: what Python would run at exit, first
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
