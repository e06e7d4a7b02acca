"""The application factory: everything is built here from a Settings object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from api.auth import Authenticator
from api.graphql_http import GraphQLView, SocketCounts
from api.http_limits import middleware as limit_middleware
from api.long_lived import ConnectionFreezer
from api.observability import Metrics
from api.pipeline import build_operation_schema
from api.poc import poc_routes
from api.rate_limit import MutationRateLimiter
from api.sockets import SocketRegistry
from api.sweeper import Sweeper
from core.database import create_engine, create_session_factory, database_unavailable
from core.errors import NoActiveBoundarySet
from core.log_redaction import install_log_redaction
from core.settings import Settings
from domain.reference_cache import ReferenceCache
from geo.boundary_index import BoundaryIndexKeeper
from geo.lookup import active_set_id
from live.feed import LiveFeed
from live.groups import SharedSubscriptions
from live.pubsub import create_pubsub
from schema.context import Services

logger = logging.getLogger("patriot")

SHUTDOWN_STEP_TIMEOUT_S = 5.0


def create_app(settings: Settings) -> Starlette:
    install_log_redaction()
    metrics = Metrics.create()
    schema = build_operation_schema(
        settings=settings, metrics=metrics, rate_limiter=MutationRateLimiter(settings)
    )
    sockets = SocketCounts()
    registry = SocketRegistry(settings=settings, metrics=metrics)
    # Intake's copy of the reference data; it checks its version on every use.
    intake_reference = ReferenceCache()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        # Looks the factory up per use, so that tests can swap it.
        app.state.authenticator = Authenticator(
            settings=settings, session_factory=lambda: app.state.session_factory()
        )
        registry.start(app.state.authenticator)
        pubsub = create_pubsub(settings.pubsub_url, database_url=settings.sqlalchemy_url)
        await pubsub.connect()
        live = LiveFeed(
            session_factory=app.state.session_factory,
            pubsub=pubsub,
            poll_interval_s=settings.live_poll_interval_s,
        )
        await live.start()
        shared_subscriptions = SharedSubscriptions(live)
        boundary_index = BoundaryIndexKeeper(
            session_factory=app.state.session_factory,
            pubsub=pubsub,
            check_interval_s=settings.boundary_index_check_s,
        )
        if settings.boundary_index:
            await boundary_index.start()
        app.state.services = Services(
            live=live,
            shared_subscriptions=shared_subscriptions,
            pubsub=pubsub,
            intake_reference=intake_reference,
            boundary_index=boundary_index,
        )
        app.state.boundary_index = boundary_index
        app.state.pubsub = pubsub
        app.state.sweeper = sweeper = Sweeper(app, settings=settings)
        if settings.sweeper_enabled:
            sweeper.start()
        freezer: asyncio.Task[None] | None = None
        if settings.freeze_settled_sockets:
            freezer = asyncio.create_task(
                ConnectionFreezer(socket_counts=sockets).run(),
                name="connection-freezer",
            )

        async def stop_freezer() -> None:
            if freezer is not None:
                freezer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await freezer

        try:
            yield
        finally:
            # A shutdown must finish even when the database does not answer.
            for name, step in (
                ("connection freezer", stop_freezer),
                ("socket credentials", registry.stop),
                ("sweeper", sweeper.stop),
                ("boundary index", boundary_index.stop),
                ("shared subscriptions", shared_subscriptions.close),
                ("live feed", live.stop),
                ("pub/sub", pubsub.disconnect),
                ("database pool", engine.dispose),
            ):
                try:
                    await asyncio.wait_for(step(), timeout=SHUTDOWN_STEP_TIMEOUT_S)
                except TimeoutError:
                    logger.warning("shutdown: %s did not stop in time", name)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = {"database": "unknown", "boundary_set": "unknown"}
        try:
            async with request.app.state.session_factory() as session:
                await session.execute(text("SELECT 1"))
                checks["database"] = "ok"
                await active_set_id(session=session)
                checks["boundary_set"] = "ok"
        except Exception as error:  # readiness reports any failure, it never raises
            if checks["database"] != "ok":
                checks["database"] = "unreachable" if database_unavailable(error) else "error"
            else:
                checks["boundary_set"] = (
                    "missing" if isinstance(error, NoActiveBoundarySet) else "error"
                )
            logger.warning("not ready: %s", type(error).__name__)
            return JSONResponse(
                {"status": "unavailable", "checks": checks},
                status_code=503,
                headers={"Retry-After": str(settings.unavailable_retry_after_s)},
            )
        return JSONResponse({"status": "ok", "checks": checks})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    graphql = GraphQLView(
        schema=schema, settings=settings, sockets=sockets, registry=registry, metrics=metrics
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
            *poc_routes(settings),
        ],
        lifespan=lifespan,
        middleware=limit_middleware(settings),
    )
    app.state.settings = settings
    app.state.metrics = metrics
    return app
