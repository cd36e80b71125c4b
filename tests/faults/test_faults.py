"""Faults under load, on the real servers and the platform's processes (issue 14): each test drives
applications of both programs along mixed paths (tests/support/fault_world.py), breaks one part
while they are in flight, and then requires that nothing was lost or doubled: every application in
its final status, every state change once on Kafka, one SMS per notice, no dead letter, every
outbox drained. The figures of each (in flight, lost, doubled, time to recover) are printed at the
end of the run; bench/README.md's "Faults" table records them. No time is asserted."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from deploy.embedded import stack as embedded_stack
from subsidy.failpoints import EXIT_CODE
from tests.support.fault_world import FIGURES, SERVICES, Driver, Figures, Platform, applications_from_env, verify
from tests.support.processes import assert_no_personal_data

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

Fault = Callable[[Platform], Awaitable[None]]


async def survive(stack, tmp_path: Path, name: str, fault: Fault, *, platform_env: dict[str, dict[str, str]] | None = None) -> Figures:
    """Start the platform, drive the applications, inject `fault` midway, check everything."""
    figures = Figures(name)
    platform = Platform(stack.env, tmp_path, platform_env)
    since_ms = int(time.time() * 1000) - 60_000
    platform.start()
    try:
        await platform.healthy()
        driver = Driver(platform, stack.env, stack.run_dir, stack.database_url, figures)
        await driver.run(applications_from_env(), lambda: fault(platform))
        await driver.settle()
        verdict = await verify(driver, stack.env, stack.database_url, since_ms)
    finally:
        codes = await asyncio.to_thread(platform.stop)
    FIGURES.append(figures)
    print(figures.line(), flush=True)
    assert not verdict.problems, "\n".join(verdict.problems)
    assert codes == {name: 0 for name in SERVICES}, codes
    for service in SERVICES:
        assert_no_personal_data(platform.log_file(service))
    return figures


async def sigkill_all(platform: Platform) -> None:
    platform.kill(SERVICES)
    platform.start(SERVICES)
    await platform.healthy(SERVICES)


async def test_sigkill_of_the_worker_and_all_three_services_loses_and_doubles_nothing(stack, tmp_path: Path) -> None:
    await survive(stack, tmp_path, "SIGKILL intake, review, notify and the worker", sigkill_all)


def restart_postgres(run_dir: Path, mode: str) -> None:
    """fast: SIGINT to the postmaster (what `stop_component` sends); immediate: SIGQUIT first.
    Then started again on the same port with its data."""
    state = embedded_stack.StackState.load(run_dir)
    assert not state.external_database, "this level restarts the embedded PostgreSQL; DATABASE_URL names an external server"
    if mode == "immediate":
        os.kill(state.processes["postgres"].pid, signal.SIGQUIT)
    embedded_stack.stop_component("postgres", run_dir, progress=lambda _m: None)
    embedded_stack.up(run_dir, progress=lambda _m: None)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_postgresql_restart_under_load_loses_and_doubles_nothing(stack, tmp_path: Path, mode: str) -> None:
    async def fault(_platform: Platform) -> None:
        await asyncio.to_thread(restart_postgres, stack.run_dir, mode)

    await survive(stack, tmp_path, f"PostgreSQL restarted ({mode} shutdown)", fault)


async def test_a_temporal_server_restart_under_load_loses_and_doubles_nothing(stack, tmp_path: Path) -> None:
    async def fault(_platform: Platform) -> None:
        def restart() -> None:
            embedded_stack.stop_component("temporal", stack.run_dir, progress=lambda _m: None)
            embedded_stack.up(stack.run_dir, progress=lambda _m: None)  # the same port, its SQLite file kept
        await asyncio.to_thread(restart)

    await survive(stack, tmp_path, "Temporal dev server restarted (SQLite kept)", fault)
