"""GraphQL over HTTP (the GraphQL-over-HTTP spec) and graphql-transport-ws, on
Strawberry's ASGI view. Every operation, whichever the transport, runs through
Strawberry's execution with the extensions of `api.pipeline`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.auth import InvalidCredentials
from api.errors import (
    RESULT_TYPES,
    OperationResult,
    error_code,
    unavailable_error,
    unavailable_retry_after,
)
from api.observability import Metrics
from api.sockets import (
    CLOSE_TRY_LATER,
    SCOPE_KEY,
    Socket,
    SocketRefused,
    SocketRegistry,
)
from core.database import database_unavailable
from core.errors import InvalidArguments, ResponseTooLarge, ServiceUnavailable
from core.settings import Settings
from domain.access import ANONYMOUS
from live.handler import SharedSubscriptionsHandler, sharing_supported
from schema.context import Context

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"

logger = logging.getLogger("patriot.http")


def accepts_graphql_response_json(accept: str) -> bool:
    return any(part.split(";")[0].strip() == GRAPHQL_RESPONSE_JSON for part in accept.split(","))


def is_request_error(result: OperationResult) -> bool:
    """Nothing was executed: the document did not parse or validate, or a limit
    refused it. Field errors that null the root have a path; these have none."""
    errors = result.errors or []
    return result.data is None and bool(errors) and not any(e.path for e in errors)


def set_http_status(context: Context, result: object) -> None:
    """The spec's answer for `application/graphql-response+json`, whose status
    tells a request error (400: nothing was executed; 429: rate limited) from a
    field error (200). Plain `application/json` is 200, except that an
    unreachable database is 503 with Retry-After in both: a caller retries
    later instead of reporting a bug."""
    if context.response is None or not isinstance(result, RESULT_TYPES):
        return
    retry_after_s = unavailable_retry_after(result.errors)
    if retry_after_s is not None:
        context.response.status_code = 503
        context.response.headers["Retry-After"] = str(retry_after_s)
    if not context.graphql_response_json:
        return
    context.response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
    if is_request_error(result) and retry_after_s is None:
        rate_limited = any(
            (e.extensions or {}).get("code") == "RATE_LIMITED" for e in result.errors or ()
        )
        context.response.status_code = 429 if rate_limited else 400


SUBSCRIPTIONS_OVER_HTTP = (
    "Subscriptions are served over websockets at /graphql (graphql-transport-ws), not over HTTP."
)


def subscription_over_http(context: Context, kind: OperationType) -> ExecutionResult | None:
    """Strawberry lets a subscription through over plain HTTP (for its multipart
    transport, which is off here) and then runs the subscription's resolver as
    if it were a query, which fails inside. It is refused before execution."""
    if context.response is None or kind is not OperationType.SUBSCRIPTION:
        return None
    refused = InvalidArguments(SUBSCRIPTIONS_OVER_HTTP)
    return ExecutionResult(data=None, errors=[GraphQLError(str(refused), original_error=refused)])


@dataclass
class SocketCounts:
    """Websockets of this process opened and closed since it started (for
    `api.long_lived`)."""

    opened: int = 0
    closed: int = 0

    def __call__(self) -> tuple[int, int]:
        return self.opened, self.closed


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class: type[BaseGraphQLTransportWSHandler[Context, None]] = (
        SharedSubscriptionsHandler
    )

    def __init__(
        self,
        *,
        schema: BaseSchema,
        settings: Settings,
        sockets: SocketCounts,
        registry: SocketRegistry,
        metrics: Metrics,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            # Only the maintained protocol; the legacy subscriptions-transport-ws is off.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=settings.websocket_origins,
            connection_init_wait_timeout=timedelta(seconds=settings.websocket_init_timeout_s),
            max_subscriptions_per_connection=settings.websocket_max_operations,
        )
        self.settings = settings
        self.sockets = sockets
        self.registry = registry
        if not sharing_supported():
            # Strawberry changed what the shared handler builds on: serve every
            # subscription on its own rather than risk a broken fan-out.
            logger.error(
                "live: Strawberry's graphql-transport-ws handler changed; subscriptions "
                "are served without sharing (see live/handler.py RELIED_ON)"
            )
            self.graphql_transport_ws_handler_class = BaseGraphQLTransportWSHandler
        metrics.shared_subscriptions.set(
            0 if self.graphql_transport_ws_handler_class is BaseGraphQLTransportWSHandler else 1
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        principal = ANONYMOUS
        if isinstance(request, Request):
            try:
                principal = await request.app.state.authenticator.from_headers(request.headers)
            except InvalidCredentials as error:
                raise HTTPException(401, str(error)) from error
            except Exception as error:
                # Checking an API key reads the database.
                if database_unavailable(error):
                    raise ServiceUnavailable(self.settings.unavailable_retry_after_s) from error
                raise
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            settings=self.settings,
            # Looked up per request: tests join it to their own transaction.
            session_factory=request.app.state.session_factory,
            # Started by the app's lifespan.
            services=request.app.state.services,
            principal=principal,
            graphql_response_json=isinstance(request, Request)
            and accepts_graphql_response_json(request.headers.get("accept", "")),
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Sockets authenticate in connection_init; live feeds are for signed-in callers."""
        websocket = context.request
        assert isinstance(websocket, WebSocket)
        socket: Socket = websocket.scope[SCOPE_KEY]
        params = context.connection_params or {}
        authenticator = websocket.app.state.authenticator
        try:
            principal = await authenticator.from_connection_params(params)
        except InvalidCredentials as error:
            raise ConnectionRejectionError({"message": str(error)}) from error
        except Exception as error:
            if not database_unavailable(error):
                raise
            # Checking an API key reads the database: come back later.
            retry_after_s = self.settings.unavailable_retry_after_s
            unavailable = SocketRefused(
                CLOSE_TRY_LATER,
                f"SERVICE_UNAVAILABLE: retry after {retry_after_s} s",
                metric="database_unavailable",
            )
            self.registry.refuse(socket, unavailable)
            raise ConnectionRejectionError({"message": unavailable.reason}) from error
        if principal.is_anonymous:
            raise ConnectionRejectionError({"message": "sign in: send a staff token"})
        try:
            self.registry.admit(socket, websocket=websocket, principal=principal, params=params)
        except SocketRefused as refused:
            self.registry.refuse(socket, refused)
            raise ConnectionRejectionError({"message": refused.reason}) from refused
        context.principal = principal
        accepted: UnsetType = UNSET  # accept, with no payload
        return accepted

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = process_result(result)
        if is_request_error(result):
            # Nothing was executed: the GraphQL spec leaves `data` out entirely.
            response.pop("data", None)
        return response

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses what json.loads lets through to fail later as an internal
        # error: invalid UTF-8, lone surrogates (PostgreSQL cannot store them) and
        # nesting deeper than 1024 (json.loads recurses until Python gives up).
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # Every answer passes here: HTTP bodies, websocket messages and the shared
        # subscriptions' payloads, so the byte budget is kept here once.
        encoded = orjson.dumps(data)
        if len(encoded) > self.settings.max_response_bytes:
            too_large = ResponseTooLarge(len(encoded), self.settings.max_response_bytes)
            logger.warning("response refused: %s", too_large)
            encoded = orjson.dumps(_in_place_of(data, too_large))
        # Text, not bytes: websocket frames must be text frames for graphql-ws clients.
        return encoded.decode()

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        # The operation set its status and media type on `sub_response` (`set_http_status`).
        return Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            headers=dict(sub_response.headers),
            media_type="application/json",
            background=sub_response.background,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.sockets.opened += 1
            socket = Socket()
            try:
                await super().__call__(
                    {**scope, SCOPE_KEY: socket}, receive, socket.send_through(send)
                )
            finally:
                self.registry.release(socket)
                self.sockets.closed += 1
            return
        request = Request(scope=scope, receive=receive)
        try:
            await _check_body_shape(request)
            response = await self.run(request)
        except ServiceUnavailable as error:
            response = _unavailable_response(request, error.retry_after_s)
        except HTTPException as error:
            # Refused before any operation ran (an unreadable body, bad credentials):
            # still a GraphQL response, in the media type the caller accepts.
            accept = request.headers.get("accept", "")
            problem: dict[str, object] = {"message": _reason(error)}
            if error.status_code == 400:
                problem["extensions"] = {"code": "BAD_REQUEST"}
            response = Response(
                orjson.dumps({"errors": [problem]}),
                status_code=error.status_code,
                media_type=GRAPHQL_RESPONSE_JSON
                if accepts_graphql_response_json(accept)
                else "application/json",
            )
        await response(scope, receive, send)


def _unavailable_response(request: Request, retry_after_s: int) -> Response:
    accept = request.headers.get("accept", "")
    return Response(
        orjson.dumps({"errors": [unavailable_error(retry_after_s).formatted]}),
        status_code=503,
        headers={"Retry-After": str(retry_after_s)},
        media_type=GRAPHQL_RESPONSE_JSON
        if accepts_graphql_response_json(accept)
        else "application/json",
    )


# The first character of a JSON text says what it holds; a GraphQL request is
# an object (an array would be a batch, which Strawberry refuses itself).
_JSON_WHITESPACE = b" \t\r\n"
_CONTAINERS = (b"{", b"[")


async def _check_body_shape(request: Request) -> None:
    """Strawberry reads a JSON body that is null, a number or a string as if it
    were an object and fails inside with an internal error: refused here. The
    body is read once; Starlette keeps it for Strawberry."""
    if request.method != "POST" or "application/json" not in request.headers.get(
        "content-type", ""
    ):
        return
    first = (await request.body()).lstrip(_JSON_WHITESPACE)[:1]
    if first and first not in _CONTAINERS:
        raise HTTPException(400, "The request body must be a JSON object.")


def _reason(error: HTTPException) -> str:
    # Strawberry's reason for an unparsable body is generic; the decoder's says why.
    cause = error.__cause__
    if isinstance(cause, json.JSONDecodeError):
        return f"{error.reason}: {cause.msg}."
    return error.reason


def _in_place_of(data: object, too_large: ResponseTooLarge) -> object:
    """The answer sent instead of one over the byte budget: the operation ran (a
    mutation is committed), only its result is withheld."""
    error = {"message": str(too_large), "extensions": {"code": error_code(too_large)}}
    result = {"data": None, "errors": [error]}
    if isinstance(data, dict) and data.get("type") == "next":  # graphql-transport-ws
        return {**data, "payload": result}
    if isinstance(data, dict) and data.get("type") == "error":
        return {**data, "payload": [error]}
    return result
