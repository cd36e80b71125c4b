"""Small workflows for the foundation's smoke tests (real dev server and time skipping)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow


@dataclass(frozen=True)
class Greeting:
    name: str


@activity.defn(name="smoke.greet")
async def greet(greeting: Greeting) -> str:
    return f"hello {greeting.name}"


@workflow.defn(name="SmokeTwoStep")
class TwoStepWorkflow:
    """Activity, then wait for a signal (the server may restart here), then activity again."""

    def __init__(self) -> None:
        self.proceed = False

    @workflow.run
    async def run(self, greeting: Greeting) -> list[str]:
        first = await workflow.execute_activity(greet, greeting, start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: self.proceed)
        second = await workflow.execute_activity(greet, Greeting(name=greeting.name + " again"), start_to_close_timeout=timedelta(seconds=10))
        return [first, second]

    @workflow.signal
    def go_on(self) -> None:
        self.proceed = True

    @workflow.query
    def waiting(self) -> bool:
        return not self.proceed


@workflow.defn(name="SmokeSevenDayTimer")
class SevenDayTimerWorkflow:
    @workflow.run
    async def run(self) -> str:
        started = workflow.now()
        await workflow.sleep(timedelta(days=7))
        return (workflow.now() - started).total_seconds().__str__()
