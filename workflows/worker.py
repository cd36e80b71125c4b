"""The workflow worker process: runs every workflow on the workflows task queue.

Activities do not run here: each runs on the task queue of the service that owns it.
The process serves `GET /health` like the services do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from faststream.asgi import AsgiResponse
from temporalio.client import Client
from temporalio.worker import Worker

from subsidy.contracts import task_queues
from subsidy.temporal import connect as connect_temporal
from subsidy.runtime import HEALTH_TIMEOUT_S, health_response
from workflows.lifecycle.longgang import LonggangModelCallLifecycle
from workflows.lifecycle.shenzhen import ShenzhenGovAiScenarioLifecycle
from workflows.platform_probe.workflows import PlatformProbeWorkflow
from workflows.publication.workflows import PublicationBatch
from workflows.settings import WorkerSettings

WORKFLOWS: list[type] = [LonggangModelCallLifecycle, ShenzhenGovAiScenarioLifecycle, PublicationBatch, PlatformProbeWorkflow]
log = structlog.get_logger(__name__)


class WorkerApp:
    """A minimal ASGI app: lifespan runs the Temporal worker, /health reports on it."""

    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.client: Client | None = None
        self.task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.client = await connect_temporal(self.settings.temporal_address, self.settings.temporal_namespace)
        worker = Worker(self.client, task_queue=task_queues.WORKFLOWS, workflows=WORKFLOWS)
        self.task = asyncio.create_task(worker.run(), name="workflow-worker")
        log.info("worker started", task_queue=task_queues.WORKFLOWS, workflows=[w.__name__ for w in WORKFLOWS])
        try:
            yield
        finally:
            await worker.shutdown()
            await asyncio.gather(self.task, return_exceptions=True)
            log.info("worker stopped")

    async def health(self) -> AsgiResponse:
        checks = {"temporal": "ok", "workflow_worker": "ok"}
        if self.client is None or self.task is None or self.task.done():
            checks["workflow_worker"] = "error: not running"
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.service_client.check_health(), timeout=HEALTH_TIMEOUT_S)
            except Exception as exc:
                checks["temporal"] = f"error: {type(exc).__name__}"
        return health_response("worker", checks)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            try:
                async with self.running():
                    await send({"type": "lifespan.startup.complete"})
                    await receive()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                raise
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "http" and scope["path"] == "/health":
            await (await self.health())(scope, receive, send)
            return
        await AsgiResponse(b"not found", 404)(scope, receive, send)


def create_app(settings: WorkerSettings | None = None) -> WorkerApp:
    return WorkerApp(settings or WorkerSettings())


__all__ = ["WORKFLOWS", "WorkerApp", "create_app"]
