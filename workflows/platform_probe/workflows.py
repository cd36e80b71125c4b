"""PlatformProbe: one activity on each service's task queue, to show the platform working end to end.

`subsidy up` runs it once everything reports healthy: it proves that the worker runs workflows
and that intake, review and notify each run their activity worker with a live database and Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from subsidy.contracts import task_queues
    from subsidy.runtime import ProbeRequest, ProbeResult, probe_activity_name


@dataclass(frozen=True)
class PlatformProbeInput:
    run: str


@dataclass(frozen=True)
class PlatformProbeResult:
    services: list[ProbeResult]


@workflow.defn(name="PlatformProbe")
class PlatformProbeWorkflow:
    @workflow.run
    async def run(self, probe: PlatformProbeInput) -> PlatformProbeResult:
        results = []
        for service, queue in task_queues.BY_SERVICE.items():
            results.append(
                await workflow.execute_activity(
                    probe_activity_name(service),
                    ProbeRequest(run=probe.run),
                    task_queue=queue,
                    result_type=ProbeResult,
                    start_to_close_timeout=timedelta(seconds=10),
                    schedule_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)),
                )
            )
        return PlatformProbeResult(services=results)
