"""GraphQL over HTTP (the GraphQL-over-HTTP spec) on top of Strawberry's ASGI view."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.types import HTTPMethod
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.auth import InvalidCredentials
from api.limits import is_rate_limited
from api.live import SharedSubscriptionsHandler
from api.operations import OperationRunner
from core.settings import Settings
from domain.access import ANONYMOUS
from schema.context import Context

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
_ACCEPTS_GRAPHQL_RESPONSE = "patriot_accepts_graphql_response_json"


def _accepts_graphql_response_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == GRAPHQL_RESPONSE_JSON for part in accept.split(","))


def _close_when_expired(socket: Request | WebSocket, expires_at: float) -> None:
    async def close() -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        if isinstance(socket, WebSocket) and socket.client_state is WebSocketState.CONNECTED:
            await socket.close(code=4403, reason="Token expired")

    task = asyncio.create_task(close(), name="close-when-token-expires")
    _EXPIRY_TASKS.add(task)
    task.add_done_callback(_EXPIRY_TASKS.discard)


_EXPIRY_TASKS: set[asyncio.Task[None]] = set()


def _is_request_error(response_data: GraphQLHTTPResponse) -> bool:
    # Parse and validation errors stop the request before execution: no data and
    # no error carries a path. A field error that nulls the root has a path.
    errors = response_data.get("errors") or []
    return (
        response_data.get("data") is None
        and bool(errors)
        and not any(isinstance(e, dict) and e.get("path") for e in errors)
    )


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's view with our context, a fast JSON encoder and the spec's
    `application/graphql-response+json` media type, whose status codes tell a
    request error (400: nothing was executed) from a field error (200)."""

    graphql_transport_ws_handler_class = SharedSubscriptionsHandler

    def __init__(
        self,
        *,
        schema: Any,
        runner: OperationRunner,
        settings: Settings,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            # Only the maintained protocol; the legacy subscriptions-transport-ws is off.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=settings.websocket_origins,
        )
        self.settings = settings
        self.runner = runner

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, with the lean runner in place of `Schema.execute`."""
        return await self._execute(request_adapter.method, context, request_data)

    async def _execute(
        self, method: HTTPMethod, context: Context, request_data: GraphQLRequestData
    ) -> ExecutionResult:
        try:
            return await self.runner.execute(
                request_data.query,
                variables=request_data.variables,
                context=context,
                root_value=None,
                operation_name=request_data.operation_name,
                allowed_operation_types=OperationType.from_http(method),
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason(method)) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error

    async def _post_json(self, request: Request) -> Response | None:
        """The common request, a JSON POST of one operation, without the layers of
        Strawberry's view (its request adapter, content negotiation for streams
        and batches); None for anything else or anything odd, which Strawberry's
        `run` then answers (the body stays readable: Starlette keeps it)."""
        headers = request.headers
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        accept = {"accept": headers.get("accept", "")}
        if media_type != "application/json" or self._get_stream_transport_from_headers(accept):
            return None
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        query, variables, extensions = (
            data.get("query"),
            data.get("variables"),
            data.get("extensions"),
        )
        if not (
            isinstance(query, str | None)
            and isinstance(variables, dict | None)
            and isinstance(extensions, dict | None)
        ):
            return None
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, sub_response)
        result = await self._execute(
            "POST",
            context,
            GraphQLRequestData(
                query=query,
                variables=variables,
                operation_name=data.get("operationName"),
                extensions=extensions,
                protocol="http",
            ),
        )
        response_data = await self.process_result(request=request, result=result)
        return self.create_response(response_data, sub_response)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        principal = ANONYMOUS
        if isinstance(request, Request):
            try:
                principal = await request.app.state.authenticator.from_headers(request.headers)
            except InvalidCredentials as error:
                raise HTTPException(401, str(error)) from error
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            settings=self.settings,
            # Owned by the app's lifespan, hence looked up per request.
            session_factory=request.app.state.session_factory,
            principal=principal,
            boundary_index=request.app.state.boundary_index.current,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Sockets authenticate in connection_init; live feeds are for signed-in callers."""
        authenticator = context.request.app.state.authenticator
        try:
            principal = await authenticator.from_connection_params(context.connection_params or {})
        except InvalidCredentials as error:
            raise ConnectionRejectionError({"message": str(error)}) from error
        if principal.is_anonymous:
            raise ConnectionRejectionError({"message": "sign in: send a staff token"})
        context.principal = principal
        if principal.expires_at is not None:
            _close_when_expired(context.request, principal.expires_at)
        accepted: UnsetType = UNSET  # accept, with no payload
        return accepted

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if isinstance(request, Request):
            sub_response.headers[_ACCEPTS_GRAPHQL_RESPONSE] = (
                "1" if _accepts_graphql_response_json(request) else "0"
            )
        return sub_response

    def encode_json(self, data: object) -> str:
        # Text, not bytes: websocket frames must be text frames for graphql-ws clients.
        return orjson.dumps(data).decode()

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        modern = sub_response.headers.get(_ACCEPTS_GRAPHQL_RESPONSE) == "1"
        del sub_response.headers[_ACCEPTS_GRAPHQL_RESPONSE]
        response = super().create_response(response_data, sub_response)
        if modern:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if isinstance(response_data, dict) and _is_request_error(response_data):
                response.status_code = 429 if is_rate_limited(response.headers) else 400
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = None
            if request.method == "POST":
                response = await self._post_json(request)
            if response is None:
                response = await self.run(request)
        except HTTPException as error:
            media_type = (
                GRAPHQL_RESPONSE_JSON
                if _accepts_graphql_response_json(request)
                else "application/json"
            )
            response = Response(
                orjson.dumps({"errors": [{"message": error.reason}]}),
                status_code=error.status_code,
                media_type=media_type,
            )
        await response(scope, receive, send)
