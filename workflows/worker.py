"""The workflow worker process: runs every workflow on the workflows task queue.

Activities do not run here: each runs on the task queue of the service that owns it.
The process serves `GET /health` like the services do (a FastAPI app whose lifespan runs the
Temporal worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker

from subsidy.contracts import task_queues
from subsidy.runtime import HEALTH_TIMEOUT_S, health_response
from subsidy.temporal import connect_from_settings
from workflows.lifecycle.longgang import LonggangModelCallLifecycle
from workflows.lifecycle.shenzhen import ShenzhenGovAiScenarioLifecycle
from workflows.platform_probe.workflows import PlatformProbeWorkflow
from workflows.publication.workflows import PublicationBatch
from workflows.settings import WorkerSettings

WORKFLOWS: list[type] = [LonggangModelCallLifecycle, ShenzhenGovAiScenarioLifecycle, PublicationBatch, PlatformProbeWorkflow]
log = structlog.get_logger(__name__)


class WorkerRuntime:
    """The Temporal worker the app's lifespan runs, and its health."""

    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.client: Client | None = None
        self.task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.client = await connect_from_settings(self.settings)
        # Pollers scale up with the backlog (Temporal's recommended setting; the server is 1.32): with
        # the fixed five (one on the shared queue, four on the worker's sticky queue), a burst of 150
        # lifecycles' workflow tasks waited seconds to be picked up (lifecycle benchmark, "workflow
        # task: queued"), and a task whose sticky wait passed 10 s went back to the one poller. Never
        # fewer than the five of before: the same setting with its floor of one on the services'
        # activity workers (tried, not kept) let a few activities wait two minutes to be picked up in
        # one run (p99 121 s), not understood.
        worker = Worker(self.client, task_queue=task_queues.WORKFLOWS, workflows=WORKFLOWS,
                        workflow_task_poller_behavior=PollerBehaviorAutoscaling(minimum=5, initial=5))
        self.task = asyncio.create_task(worker.run(), name="workflow-worker")
        log.info("worker started", task_queue=task_queues.WORKFLOWS, workflows=[w.__name__ for w in WORKFLOWS])
        try:
            yield
        finally:
            await worker.shutdown()
            await asyncio.gather(self.task, return_exceptions=True)
            log.info("worker stopped")

    async def health(self) -> JSONResponse:
        checks = {"temporal": "ok", "workflow_worker": "ok"}
        if self.client is None or self.task is None or self.task.done():
            checks["workflow_worker"] = "error: not running"
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.service_client.check_health(), timeout=HEALTH_TIMEOUT_S)
            except Exception as exc:
                checks["temporal"] = f"error: {type(exc).__name__}"
        return health_response("worker", checks)


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    runtime = WorkerRuntime(settings or WorkerSettings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with runtime.running():
            yield

    app = FastAPI(title="subsidy worker", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.worker = runtime

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return await runtime.health()

    return app


__all__ = ["WORKFLOWS", "WorkerRuntime", "create_app"]
