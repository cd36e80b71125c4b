"""The fault level (issue 14): the platform's processes on an embedded stack of this level's own,
killed, cut off and restarted under load. Its servers are stopped and restarted by the tests, so
it never uses a stack other tests share: a fresh run directory, purged at the end (or
FAULTS_RUN_DIR, a stack this level may restart at will, left running).

FAULTS_APPLICATIONS sets how many applications each test drives (default in
tests/support/fault_world.py); each test's figures are printed at the end of the run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import Stack, embedded_stack_for_tests
from tests.support import fault_world


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """This level's own stack (SUBSIDY_TEST_RUN_DIR, a stack other tests share, is not used)."""
    yield from embedded_stack_for_tests(os.environ.get("FAULTS_RUN_DIR"), prefix="subsidy-faults-stack-")


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if fault_world.FIGURES:
        terminalreporter.section("fault figures (bench/README.md, Faults)")
        for figures in fault_world.FIGURES:
            terminalreporter.write_line(figures.line())
