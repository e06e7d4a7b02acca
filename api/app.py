"""The application factory: everything is built here from a Settings object."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from api.database import create_engine, create_session_factory
from api.errors import PublicErrors
from api.graphql_http import GraphQLView
from api.observability import Metrics, OperationObserver
from api.settings import Settings
from api.transactions import TransactionPerOperation
from geo.lookup import active_set_id
from schema import build_schema

logger = logging.getLogger("patriot")


def create_app(settings: Settings) -> Starlette:
    metrics = Metrics.create()
    schema = build_schema(
        # Exit order is the reverse: errors are made public first, then the
        # transaction sees them, then the observer logs the final outcome.
        extensions=[
            functools.partial(OperationObserver, metrics=metrics),
            TransactionPerOperation,
            PublicErrors,
        ]
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        try:
            yield
        finally:
            await engine.dispose()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            async with request.app.state.session_factory() as session:
                await session.execute(text("SELECT 1"))
                checks["database"] = "ok"
                await active_set_id(session=session)
                checks["boundary_set"] = "ok"
        except Exception as error:  # readiness reports any failure, it never raises
            checks.setdefault("database", "unreachable")
            checks.setdefault("boundary_set", "missing")
            logger.warning("not ready: %s", type(error).__name__)
            return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
        return JSONResponse({"status": "ok", "checks": checks})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    graphql = GraphQLView(schema=schema, settings=settings)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    return app
