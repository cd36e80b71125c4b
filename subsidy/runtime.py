"""The process runtime shared by intake, review and notify (their `bootstrap`).

A service declares what is its own (a Kafka router, the activities of its Temporal task queue);
this module wires the rest the same way for each of them:

- a FastStream Kafka broker (idempotent producer, acks=all);
- resources owned by the lifespan: an asyncpg pool, a Temporal client, the service's Temporal
  activity worker; nothing is connected at import time;
- `GET /health` answering 200 with each check when Kafka, PostgreSQL, Temporal and the activity
  worker are up, 503 otherwise;
- a probe activity (`platform.probe.<service>`) on the service's task queue, which the
  PlatformProbe workflow calls to show the platform working end to end;
- the outbox relay of the service's schema (subsidy/outbox.py), running while the broker is
  connected: FastStream connects the broker only after the lifespan has entered (and serves
  /health meanwhile), so the relay starts in `after_startup` and stops in `on_shutdown`, before
  the broker disconnects and the lifespan closes the pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog
import uvicorn
from faststream import ContextRepo
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.asgi.types import ASGIApp
from faststream.kafka import KafkaBroker, KafkaRouter
from temporalio import activity
from temporalio.client import Client

from subsidy.temporal import connect as connect_temporal
from temporalio.worker import Worker

from subsidy.log_context import LogContextInterceptor
from subsidy.logging import configure_logging
from subsidy.messaging import DeadLetters
from subsidy.outbox import OutboxRelay
from subsidy.settings import PlatformSettings

log = structlog.get_logger(__name__)

HEALTH_TIMEOUT_S = 3.0


@dataclass
class Resources:
    """What handlers and activities of a service may use; owned by the lifespan."""

    settings: PlatformSettings
    broker: KafkaBroker
    pool: asyncpg.Pool
    temporal: Client
    dead_letters: DeadLetters
    extras: dict[str, Any] = field(default_factory=dict)  # what the service's `setup` built


@dataclass(frozen=True)
class ProbeRequest:
    run: str


@dataclass(frozen=True)
class ProbeResult:
    service: str
    database: str
    kafka: bool


class BackgroundLoop(Protocol):
    running: bool

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    task_queue: str
    router: KafkaRouter
    activities: Callable[[Resources], Sequence[Callable[..., Any]]] = field(default=lambda _resources: ())
    # Built once at start, kept in `resources.extras` (e.g. intake's cipher and programs).
    setup: Callable[[Resources], dict[str, Any]] = field(default=lambda _resources: {})
    # Background loops besides the outbox relay (e.g. notify's SMS sender): name -> object with
    # `start()`, `stop()` and `running`; started once the broker is connected, in /health.
    loops: Callable[[Resources], dict[str, BackgroundLoop]] = field(default=lambda _resources: {})
    # HTTP endpoints by path prefix, given the settings and a getter of the resources (None until started).
    http_routes: Callable[[Any, Callable[[], Resources | None]], Sequence[tuple[str, ASGIApp]]] = field(
        default=lambda _settings, _resources: ()
    )


async def keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset on release, after asyncpg's own (which rolls back an open transaction and
    drops listeners): nothing more. The platform leaves no session state behind (only
    transaction-scoped advisory locks and `SET LOCAL`; the outbox relay UNLISTENs before it lets
    its connection go), so asyncpg's default reset query (advisory unlock, CLOSE ALL, UNLISTEN *,
    RESET ALL) would be a database round trip per checkout for nothing."""


def probe_activity_name(service: str) -> str:
    return f"platform.probe.{service}"


def _probe_activity(service: str, resources: Resources) -> Callable[..., Any]:
    @activity.defn(name=probe_activity_name(service))
    async def probe(request: ProbeRequest) -> ProbeResult:
        database = await resources.pool.fetchval("SELECT current_database()")
        kafka_ok = await resources.broker.ping(timeout=HEALTH_TIMEOUT_S)
        return ProbeResult(service=service, database=str(database), kafka=bool(kafka_ok))

    return probe


async def _check(name: str, check: Callable[[], Any]) -> tuple[str, str]:
    try:
        result = await asyncio.wait_for(check(), timeout=HEALTH_TIMEOUT_S)
    except Exception as exc:  # reported, not swallowed: the endpoint answers 503 with the cause
        return name, f"error: {type(exc).__name__}"
    return name, "ok" if result is not False else "error: not ready"


def health_response(service: str, checks: dict[str, str]) -> AsgiResponse:
    healthy = all(value == "ok" for value in checks.values())
    body = json.dumps({"service": service, "status": "ok" if healthy else "unhealthy", "checks": checks}).encode()
    return AsgiResponse(body, 200 if healthy else 503, headers={"content-type": "application/json"})


def build_app(definition: ServiceDefinition, settings: PlatformSettings) -> AsgiFastStream:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"subsidy-{definition.name}",
        # Not under "faststream": that logger has a handler of its own. These propagate to the root
        # handler, i.e. the one structlog configuration with its masking.
        logger=logging.getLogger(f"subsidy.kafka.{definition.name}"),
        acks="all",
        enable_idempotence=True,
    )
    broker.include_router(definition.router)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            server_settings={"search_path": f"{definition.name},public", "application_name": f"subsidy-{definition.name}"},
            reset=keep_session,
        )
        temporal = await connect_temporal(settings.temporal_address, settings.temporal_namespace)
        resources = Resources(
            settings=settings, broker=broker, pool=pool, temporal=temporal, dead_letters=DeadLetters(broker, pool)
        )
        resources.extras.update(definition.setup(resources))
        context.set_global("resources", resources)
        worker = Worker(
            temporal,
            task_queue=definition.task_queue,
            activities=[_probe_activity(definition.name, resources), *definition.activities(resources)],
            interceptors=[LogContextInterceptor()],
        )
        worker_task = asyncio.create_task(worker.run(), name=f"{definition.name}-activity-worker")
        loops: dict[str, BackgroundLoop] = {
            "outbox_relay": OutboxRelay(pool, broker, schema=definition.name),
            **definition.loops(resources),
        }
        state.update(resources=resources, worker_task=worker_task, loops=loops)
        log.info("service started", service=definition.name, task_queue=definition.task_queue)
        try:
            yield
        finally:
            for loop in loops.values():  # normally stopped already (on_shutdown); here if start-up was cut short
                await loop.stop()
            await worker.shutdown()
            await asyncio.gather(worker_task, return_exceptions=True)
            await pool.close()
            log.info("service stopped", service=definition.name)

    async def start_loops() -> None:  # after_startup: the broker is connected
        for loop in state["loops"].values():
            await loop.start()

    async def stop_loops() -> None:  # on_shutdown: the broker is still connected
        for loop in state["loops"].values():
            await loop.stop()

    @get(include_in_schema=False)
    async def health(scope: Any) -> AsgiResponse:
        resources: Resources | None = state.get("resources")
        if resources is None:
            return health_response(definition.name, {"startup": "error: not started"})
        worker_task: asyncio.Task[None] = state["worker_task"]

        async def worker_running() -> bool:
            return not worker_task.done()

        def loop_running(loop: BackgroundLoop) -> Callable[[], Any]:
            async def running() -> bool:
                return loop.running

            return running

        checks = dict(
            await asyncio.gather(
                _check("kafka", lambda: resources.broker.ping(timeout=HEALTH_TIMEOUT_S)),
                _check("postgres", lambda: resources.pool.fetchval("SELECT 1")),
                _check("temporal", lambda: resources.temporal.service_client.check_health()),
                _check("activity_worker", worker_running),
                *(_check(name, loop_running(loop)) for name, loop in state["loops"].items()),
            )
        )
        return health_response(definition.name, checks)

    app = AsgiFastStream(
        broker,
        asgi_routes=[("/health", health)],
        lifespan=lifespan,
        after_startup=[start_loops],
        on_shutdown=[stop_loops],
        logger=logging.getLogger(f"subsidy.app.{definition.name}"),
    )
    routes = definition.http_routes(settings, lambda: state.get("resources"))
    return PrefixRoutes(app, routes) if routes else app


class PrefixRoutes:
    """FastStream's ASGI app matches exact paths; this routes `/prefix/...` paths to their app
    (e.g. `/applications/LG2025-000123`) and everything else, lifespan included, to FastStream."""

    def __init__(self, app: Any, routes: Sequence[tuple[str, ASGIApp]]):
        self.app = app
        self.routes = list(routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for prefix, route in self.routes:
                if scope["path"].startswith(prefix):
                    await route(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def serve(app: Any, settings: PlatformSettings, service: str) -> None:
    """Run an ASGI app (the service, or the worker's health app) until SIGINT/SIGTERM."""
    configure_logging(service, level=settings.log_level, fmt=settings.log_format)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        # uvloop (a dependency): the services' work is asyncpg, aiokafka and Temporal client calls,
        # whose socket I/O costs a third less CPU on it (bench/README.md, 2026-11-22).
        loop="uvloop",
        log_config=None,  # keep the one structlog configuration
        access_log=False,
    )
    _Server(config).run()


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, so the process would die by the
    signal (exit -15) although it stopped cleanly; a clean stop exits 0 here."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()
