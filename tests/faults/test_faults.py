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
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from deploy.embedded import stack as embedded_stack
from subsidy.failpoints import EXIT_CODE
from tests.support.fault_world import FIGURES, SERVICES, Driver, Figures, Platform, applications_from_env, verify
from tests.support.fake_sms_providers import FakeAliyun, FakeTencent
from tests.support.processes import assert_no_personal_data

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

Fault = Callable[[Platform, Driver], Awaitable[None]]


async def survive(stack, tmp_path: Path, name: str, fault: Fault, *, platform_env: dict[str, dict[str, str]] | None = None,
                  provider_sends: Callable[[], Counter[str]] | None = None, delivery_reports: bool = False) -> Figures:
    """Start the platform, drive the applications, inject `fault` midway, check everything.
    `provider_sends`: the SMS sends per message id when notify uses the fake providers (their
    delivery reports then come from the driver: `delivery_reports`)."""
    figures = Figures(name)
    platform = Platform(stack.env, tmp_path, platform_env)
    since_ms = int(time.time() * 1000) - 60_000
    platform.start()
    try:
        await platform.healthy()
        driver = Driver(platform, stack.env, stack.run_dir, stack.database_url, figures)
        if delivery_reports:
            driver.deliver = driver.report_delivery
        await driver.run(applications_from_env(), lambda: fault(platform, driver))
        await driver.settle()
        verdict = await verify(driver, stack.env, stack.database_url, since_ms, provider_sends=provider_sends)
    finally:
        codes = await asyncio.to_thread(platform.stop)
    FIGURES.append(figures)
    print(figures.line(), flush=True)
    assert not verdict.problems, "\n".join(verdict.problems)
    assert codes == {name: 0 for name in SERVICES}, codes
    for service in SERVICES:
        assert_no_personal_data(platform.log_file(service))
    return figures


async def sigkill_all(platform: Platform, _driver: Driver) -> None:
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
    async def fault(_platform: Platform, _driver: Driver) -> None:
        await asyncio.to_thread(restart_postgres, stack.run_dir, mode)

    await survive(stack, tmp_path, f"PostgreSQL restarted ({mode} shutdown)", fault)


async def test_a_temporal_server_restart_under_load_loses_and_doubles_nothing(stack, tmp_path: Path) -> None:
    async def fault(_platform: Platform, _driver: Driver) -> None:
        def restart() -> None:
            embedded_stack.stop_component("temporal", stack.run_dir, progress=lambda _m: None)
            embedded_stack.up(stack.run_dir, progress=lambda _m: None)  # the same port, its SQLite file kept
        await asyncio.to_thread(restart)

    await survive(stack, tmp_path, "Temporal dev server restarted (SQLite kept)", fault)


async def test_the_kafka_broker_stopped_for_a_minute_under_load_loses_and_doubles_nothing(stack, tmp_path: Path) -> None:
    async def fault(_platform: Platform, driver: Driver) -> None:
        await asyncio.to_thread(embedded_stack.stop_component, "kafka", stack.run_dir, progress=lambda _m: None)
        driver.spawn(8)  # the portals go on sending: the webhook answers 503 with Retry-After, they retry
        await asyncio.sleep(60)
        await asyncio.to_thread(embedded_stack.up, stack.run_dir, progress=lambda _m: None)

    figures = await survive(stack, tmp_path, "Kafka broker stopped for 60 s", fault)
    assert figures.webhook_503 > 0  # the portals were told to come back, and did


async def crash_at(platform: Platform, service: str, failpoint: str) -> None:
    """Kill `service`, start it armed to die at `failpoint`, see it die there (under the load that
    goes on), then start it as usual."""
    platform.kill((service,))
    platform.start((service,), env={"SUBSIDY_FAILPOINTS": failpoint})
    code = await platform.exited(service)
    assert code == EXIT_CODE, f"{service} exited with {code}, not at {failpoint}"
    platform.start((service,))
    await platform.healthy((service,))


async def test_the_outbox_relay_killed_between_publishing_and_marking_sent_doubles_nothing(stack, tmp_path: Path) -> None:
    async def fault(platform: Platform, _driver: Driver) -> None:
        # Intake's relay publishes the state changes: it dies with a round on Kafka but not stamped.
        await crash_at(platform, "intake", "outbox.after_publish")

    figures = await survive(stack, tmp_path, "outbox relay killed between publish and stamp", fault)
    assert figures.redelivered > 0  # the round was published again: the consumers absorbed the repeat


async def test_notify_killed_between_the_providers_accept_and_its_commit_sends_each_sms_once(stack, tmp_path: Path) -> None:
    """notify dies with a message taken by the (local) provider and not yet marked accepted: the
    next notify asks the provider before sending again, and reports the receipts the dead one had
    scheduled (the local provider's receipt was lost with its process before)."""
    async def fault(platform: Platform, _driver: Driver) -> None:
        await crash_at(platform, "notify", "notify.after_provider_accept")
        platform.kill(("notify",))  # and once more, with receipts scheduled and not yet reported
        platform.start(("notify",))
        await platform.healthy(("notify",))

    figures = await survive(stack, tmp_path, "notify killed between the provider's accept and its commit", fault)
    assert figures.sms > 0


def providers_env(aliyun: FakeAliyun, tencent: FakeTencent) -> dict[str, str]:
    """notify on the two real providers' protocols (fakes on loopback), Aliyun first."""
    return {"SMS_PROVIDERS": "aliyun,tencent",
            "ALIYUN_SMS_ACCESS_KEY_ID": "ak", "ALIYUN_SMS_ACCESS_KEY_SECRET": "sk", "ALIYUN_SMS_ENDPOINT": aliyun.endpoint,
            "ALIYUN_SMS_PROTOCOL": "http",
            "TENCENT_SMS_SECRET_ID": "id", "TENCENT_SMS_SECRET_KEY": "key", "TENCENT_SMS_SDK_APP_ID": "1400000000",
            "TENCENT_SMS_ENDPOINT": tencent.endpoint, "TENCENT_SMS_SCHEME": "http"}


async def test_a_provider_whose_replies_are_lost_under_load_sends_each_sms_once(stack, tmp_path: Path) -> None:
    """Aliyun takes messages and its replies never arrive (the connection closes): notify must ask
    it (QuerySendDetails by our OutId) before any resend or failover to Tencent. The providers'
    delivery reports come back through intake's webhook, as those providers would send them."""
    with FakeAliyun() as aliyun, FakeTencent() as tencent:
        def sends() -> Counter[str]:
            return Counter([m.out_id for m in aliyun.messages] + [m.session_context for m in tencent.messages])

        async def fault(_platform: Platform, _driver: Driver) -> None:
            aliyun.fail_next(8, "lost_reply")

        figures = await survive(stack, tmp_path, "SMS provider replies lost (Aliyun, Tencent as failover)", fault,
                                platform_env={"notify": providers_env(aliyun, tencent)}, provider_sends=sends,
                                delivery_reports=True)
        assert figures.sms > 0 and aliyun.query_requests > 0  # the lost sends were asked about, not resent
