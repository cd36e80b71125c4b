"""The fault level (issue 14): the platform's processes on an embedded stack of this level's own,
killed, cut off and restarted under load. Its servers are stopped and restarted by the tests, so
it never uses a stack other tests share: a fresh run directory, purged at the end (or
FAULTS_RUN_DIR, a stack this level may restart at will, left running).

FAULTS_APPLICATIONS sets how many applications each test drives (default in
tests/support/fault_world.py); each test's figures are printed at the end of the run."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.embedded import stack as embedded_stack
from tests.conftest import Stack
from tests.support import fault_world


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """This level's own stack (SUBSIDY_TEST_RUN_DIR, a stack other tests share, is not used)."""
    reuse = os.environ.get("FAULTS_RUN_DIR")
    if reuse:
        state = embedded_stack.up(Path(reuse), progress=_progress)
        yield Stack(run_dir=state.run_dir, env=dict(state.env), owned=False)
        return
    run_dir = Path(tempfile.mkdtemp(prefix="subsidy-faults-stack-"))
    state = embedded_stack.up(run_dir, progress=_progress)
    try:
        yield Stack(run_dir=run_dir, env=dict(state.env), owned=True)
    finally:
        embedded_stack.down(run_dir, purge=True, progress=_progress)
        shutil.rmtree(run_dir, ignore_errors=True)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if fault_world.FIGURES:
        terminalreporter.section("fault figures (bench/README.md, Faults)")
        for figures in fault_world.FIGURES:
            terminalreporter.write_line(figures.line())
