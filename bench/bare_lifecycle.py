"""The bare workflow of bench/lifecycle_throughput.py: the lifecycle's shape without the platform.

It runs a plan taken from a real lifecycle's history, op by op: `a` an activity (a no-op on the
bench's own task queue), `u` wait for the next update (its handler returns once the activity after
it is done, as a lifecycle's decision returns once its state change is recorded), `s` wait for the
next signal. Kept apart (few imports) because the workflow sandbox re-imports its module.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BARE_WORKFLOW = "BenchBareLifecycle"
BARE_TASK_QUEUE = "bench-bare-lifecycle"
NOOP_ACTIVITY = "bench.noop"


@activity.defn(name=NOOP_ACTIVITY)
async def noop(step: int) -> int:
    return step


@workflow.defn(name=BARE_WORKFLOW)
class BareLifecycle:
    def __init__(self) -> None:
        self.updates = 0  # received
        self.taken = 0  # taken by run()
        self.applied = 0  # released
        self.signals = 0
        self.signals_taken = 0

    @workflow.run
    async def run(self, plan: str) -> int:
        release_after_next_activity = False
        for step, op in enumerate(plan):
            if op == "a":
                await workflow.execute_activity(NOOP_ACTIVITY, step, task_queue=BARE_TASK_QUEUE,
                                                start_to_close_timeout=timedelta(seconds=60))
                if release_after_next_activity:
                    self.applied, release_after_next_activity = self.taken, False
            elif op == "u":
                await workflow.wait_condition(lambda: self.updates > self.taken)
                self.taken += 1
                release_after_next_activity = True
            elif op == "s":
                await workflow.wait_condition(lambda: self.signals > self.signals_taken)
                self.signals_taken += 1
        self.applied = self.taken
        await workflow.wait_condition(workflow.all_handlers_finished)
        return len(plan)

    @workflow.update(name="decide")
    async def decide(self) -> int:
        self.updates += 1
        ticket = self.updates
        await workflow.wait_condition(lambda: self.applied >= ticket)
        return ticket

    @workflow.signal(name="fact")
    def fact(self) -> None:
        self.signals += 1
