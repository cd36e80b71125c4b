"""The process runtime shared by intake, review and notify (their `bootstrap`).

A service declares what is its own (a Kafka router, the activities of its Temporal task queue,
its FastAPI routers); this module wires the rest the same way for each of them, as one FastAPI
app served by uvicorn:

- a FastStream Kafka broker (idempotent producer, acks=all), started and stopped by the app's
  lifespan (FastStream's own ASGI app is not used: FastAPI is the platform's one HTTP framework);
- resources owned by the lifespan: an asyncpg pool, a Temporal client, the service's Temporal
  activity worker; nothing is connected at import time;
- `GET /health` (no token) answering 200 with each check when Kafka, PostgreSQL, Temporal, the
  activity worker and the background loops are up, 503 otherwise;
- `GET /openapi.json`: the service's API, described by FastAPI;
- every other route needs a bearer token (`subsidy.identity.http.Authenticated`), verified by
  `app.state.verifier` (a `TokenVerifier` of the configured OIDC issuer); `ApiError`s answer
  `{"code", "message", "detail"}`;
- a probe activity (`platform.probe.<service>`) on the service's task queue, which the
  PlatformProbe workflow calls to show the platform working end to end;
- the outbox relay of the service's schema (subsidy/outbox.py) and the service's own loops, which
  run only while the broker is connected: the lifespan starts them after `broker.start()` and
  stops them before `broker.stop()`, then stops the worker and closes the pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from faststream.kafka import KafkaBroker, KafkaRouter
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from subsidy.identity import TokenVerifier
from subsidy.log_context import LogContextInterceptor
from subsidy.logging import configure_logging
from subsidy.messaging import DeadLetters
from subsidy.outbox import OutboxRelay
from subsidy.producer import renew_producer_after
from subsidy.settings import PlatformSettings
from subsidy.temporal import connect_from_settings
from subsidy.web import ApiError, RefuseNulInUrl, api_error_handler

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


class LoopTask:
    """A `BackgroundLoop` run as one asyncio task: a subclass writes `_loop()` (and names the task
    `task_name`); `start()` starts it once, `stop()` cancels it and waits for it to end."""

    task_name = "background-loop"
    _task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        raise NotImplementedError


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
    # The service's HTTP API: FastAPI routers, included in the app. Routes take `Authenticated`
    # (subsidy.identity.http) and `Started` (subsidy.web) for the caller and the resources.
    routers: Callable[[], Sequence[APIRouter]] = field(default=lambda: ())
    title: str = ""  # the OpenAPI title; "subsidy <name>" if empty


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


def health_response(service: str, checks: dict[str, str]) -> JSONResponse:
    healthy = all(value == "ok" for value in checks.values())
    body = {"service": service, "status": "ok" if healthy else "unhealthy", "checks": checks}
    return JSONResponse(body, 200 if healthy else 503)


_STATUS_MESSAGES_ZH = {
    400: "请求无法处理",
    401: "未登录或登录已失效，请重新登录",
    403: "无权执行此操作",
    404: "未找到",
    405: "不支持该请求方法",
    409: "操作与当前状态冲突",
    422: "请求参数不正确",
    503: "服务暂不可用，请稍后再试",
}


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Framework errors (401 from the token check, an unknown path, a wrong method) in the same shape
    as `ApiError`s: `{"code", "message", "detail"}`. A detail that is already `{"code", "message",
    ...}` (subsidy.identity.http) gives the code and message and stays whole under `detail`."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if isinstance(detail, dict) and "code" in detail and "message" in detail:
        body = {"code": detail["code"], "message": detail["message"], "detail": detail}
    else:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        body = {"code": code, "message": _STATUS_MESSAGES_ZH.get(exc.status_code, "请求无法处理"), "detail": detail}
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """422 for a request that does not fit the route (parameters, body), with FastAPI's list of
    errors under `detail` (input values left out: they may be personal data)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in error.items() if k not in ("input", "ctx", "url")} for error in exc.errors()]
    return JSONResponse(
        {"code": "invalid_request", "message": _STATUS_MESSAGES_ZH[422], "detail": jsonable_encoder(errors)}, 422
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)


class PlatformBroker(KafkaBroker):
    """The services' broker: a publish that fails because the broker no longer accepts this
    producer (after a broker restart) puts a new producer in place before the error goes to the
    caller, so the caller's retry can succeed (subsidy/producer.py)."""

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().publish(*args, **kwargs)
        except Exception as exc:
            await renew_producer_after(self, exc)
            raise


def new_broker(definition: ServiceDefinition, settings: PlatformSettings) -> KafkaBroker:
    broker = PlatformBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"subsidy-{definition.name}",
        # Not under "faststream": that logger has a handler of its own. These propagate to the root
        # handler, i.e. the one structlog configuration with its masking.
        logger=logging.getLogger(f"subsidy.kafka.{definition.name}"),
        acks="all",
        enable_idempotence=True,
    )
    broker.include_router(definition.router)
    return broker


def build_app(definition: ServiceDefinition, settings: PlatformSettings) -> FastAPI:
    broker = new_broker(definition, settings)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            server_settings={"search_path": f"{definition.name},public", "application_name": f"subsidy-{definition.name}"},
            reset=keep_session,
        )
        worker: Worker | None = None
        worker_task: asyncio.Task[None] | None = None
        loops: dict[str, BackgroundLoop] = {}
        broker_started = False
        try:
            temporal = await connect_from_settings(settings)
            resources = Resources(
                settings=settings, broker=broker, pool=pool, temporal=temporal, dead_letters=DeadLetters(broker, pool)
            )
            resources.extras.update(definition.setup(resources))
            # What the Kafka handlers receive as `resources: Resources = Context()`.
            broker.context.set_global("resources", resources)
            worker = Worker(
                temporal,
                task_queue=definition.task_queue,
                activities=[_probe_activity(definition.name, resources), *definition.activities(resources)],
                interceptors=[LogContextInterceptor()],
            )
            worker_task = asyncio.create_task(worker.run(), name=f"{definition.name}-activity-worker")
            await broker.start()  # connects, then starts the subscribers
            broker_started = True
            # The relay and the service's loops publish: they run only while the broker is connected.
            loops = {"outbox_relay": OutboxRelay(pool, broker, schema=definition.name), **definition.loops(resources)}
            for loop in loops.values():
                await loop.start()
            state.update(resources=resources, worker_task=worker_task, loops=loops)
            app.state.resources = resources
            log.info("service started", service=definition.name, task_queue=definition.task_queue)
            yield
        finally:
            app.state.resources = None
            state.clear()
            for loop in loops.values():
                await loop.stop()
            if broker_started:
                await broker.stop()
            if worker is not None:
                await worker.shutdown()
            if worker_task is not None:
                await asyncio.gather(worker_task, return_exceptions=True)
            await pool.close()
            log.info("service stopped", service=definition.name)

    app = FastAPI(
        title=definition.title or f"subsidy {definition.name}",
        lifespan=lifespan,
        docs_url=None,  # /openapi.json is the published description; no bundled UI pages
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.resources = None
    app.state.verifier = TokenVerifier.from_settings(settings)
    install_error_handlers(app)
    app.add_middleware(RefuseNulInUrl)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
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

    for router in definition.routers():
        app.include_router(router)
    return app


def serve(app: Any, settings: PlatformSettings, service: str) -> None:
    """Run an ASGI app (a service, the worker's health app) until SIGINT/SIGTERM."""
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
