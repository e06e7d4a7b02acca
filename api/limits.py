"""Abuse limits, each set by `Settings` and on by default.

GraphQL documents are bounded by depth, aliases, tokens and an estimated cost
(Strawberry's own depth and alias rules plus a cost rule) and may not carry NUL
characters; request bodies by size (HTTP 413); mutations by a token bucket per
caller; production hides introspection and suggestions; CORS follows an
allow-list. The document limits are validation rules that `api.documents` runs
once per document (`document_rules`), plus the checks that read a request's
variables (`request_errors`); `create_app` wires the rest through
`schema_extensions` and `middleware`.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    StringValueNode,
    TypeMetaFieldDef,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_operation_ast,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.types.graphql import OperationType

from core.errors import InvalidArguments, PatriotError
from core.settings import Settings

if TYPE_CHECKING:
    from schema.context import Context

ExtensionFactory = Callable[[], SchemaExtension]


class CostLimitExceeded(PatriotError):
    def __init__(self, cost: int, limit: int) -> None:
        super().__init__(
            f"Operation cost {cost} exceeds the limit of {limit}; "
            "select fewer fields or ask for smaller pages."
        )
        self.cost = cost
        self.limit = limit


class RateLimited(PatriotError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"Too many mutations; retry after {retry_after_s} s.")
        self.retry_after_s = retry_after_s


def schema_extensions(
    settings: Settings, rate_limiter: MutationRateLimiter
) -> list[ExtensionFactory]:
    """Factories, not instances: Strawberry builds fresh extensions per operation."""
    extensions: list[ExtensionFactory] = [lambda: MutationRateLimit(limiter=rate_limiter)]
    if not settings.field_suggestions_enabled:
        extensions.append(HideSuggestions)
    return extensions


def document_rules(settings: Settings) -> list[type[ValidationRule]]:
    """The limits that depend on the document alone (the token limit is the parser's)."""
    rules: list[type[ValidationRule]] = [
        max_depth_rule(settings.max_query_depth, None),
        max_aliases_rule(settings.max_aliases),
        NulInDocument,
    ]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def request_errors(variables: Mapping[str, Any] | None) -> list[GraphQLError]:
    """The limits that read a request's variables (the cost is `api.documents`')."""
    if variables and _contains_nul(variables):
        return [GraphQLError(NUL_MESSAGE, original_error=InvalidArguments(NUL_MESSAGE))]
    return []


def middleware(settings: Settings) -> list[Middleware]:
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-api-key"],
            expose_headers=["retry-after"],
            max_age=600,
        ),
        Middleware(RequestBodyLimit, max_bytes=settings.max_body_bytes),
    ]


# --- Cost --------------------------------------------------------------------
#
# cost(selection set) = sum of cost(field) over its fields, inline fragments and
#                       fragment spreads (every branch of a union counts);
# cost(field)         = 1 for a leaf, otherwise 1 + n * cost(its selection set),
# where n is the field's `first` or `limit` argument (as given, from a variable,
# or its default) and 1 for a field without one. Lists without a page argument
# (kecamatan, kelurahan, categories, a case's history) are bounded by the data
# and count once. So `cases(first: 100) { edges { node { ticket title } } }`
# costs 1 + 100 * (1 + (1 + 2)) = 401.

PAGE_ARGUMENTS = ("first", "limit")


class _OperationCost:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        operation: OperationDefinitionNode,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)
        self._fragment_costs: dict[str, int] = {}
        self._visiting: set[str] = set()
        # Whether a page size came from a variable: then the cost of the same
        # document differs between requests and cannot be kept with it.
        self.uses_variables = False

    def of(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        return self._selections(root, operation.selection_set)

    def _selections(self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                branch = self.schema.get_type(condition.name.value) if condition else parent
                total += self._selections(branch, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value)
        return total

    def _fragment(self, name: str) -> int:
        # Memoized: a fragment spread many times (or spreading others many times)
        # is costed once, so a crafted document cannot make this exponential.
        if name in self._fragment_costs:
            return self._fragment_costs[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._visiting:
            return 0  # unknown fragments and cycles are reported by the standard rules
        self._visiting.add(name)
        cost = self._selections(
            self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set
        )
        self._visiting.discard(name)
        self._fragment_costs[name] = cost
        return cost

    def _field(self, parent: GraphQLNamedType | None, node: FieldNode) -> int:
        if node.selection_set is None:
            return 1
        definition = self._definition(parent, node.name.value)
        child = get_named_type(definition.type) if definition else None
        return 1 + self._page_size(definition, node) * self._selections(child, node.selection_set)

    def _definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if parent is self.schema.query_type and name == "__schema":
            return SchemaMetaFieldDef
        if parent is self.schema.query_type and name == "__type":
            return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field: GraphQLField | None = parent.fields.get(name)
            return field
        return None

    def _page_size(self, definition: GraphQLField | None, node: FieldNode) -> int:
        if definition is None:
            return 1
        for name in PAGE_ARGUMENTS:
            if name in definition.args:
                return max(1, self._int_argument(node, name, definition.args[name]))
        return 1

    def _int_argument(self, node: FieldNode, name: str, argument: GraphQLArgument) -> int:
        default = argument.default_value if isinstance(argument.default_value, int) else 1
        for given in node.arguments or ():
            if given.name.value != name:
                continue
            value = given.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                self.uses_variables = True
                variable = self.variables.get(value.name.value)
                if isinstance(variable, int) and not isinstance(variable, bool):
                    return variable
        return default


@dataclass(frozen=True)
class OperationCost:
    value: int
    uses_variables: bool

    def error(self, operation: OperationDefinitionNode, limit: int) -> GraphQLError:
        exceeded = CostLimitExceeded(self.value, limit)
        return GraphQLError(str(exceeded), operation, original_error=exceeded)


def measure_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None = None,
) -> OperationCost:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measure = _OperationCost(schema, fragments, variables or {}, operation)
    value = measure.of(operation)
    return OperationCost(value, measure.uses_variables)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None = None,
) -> int:
    return measure_cost(schema, document, operation, variables).value


# --- Mutation rate -----------------------------------------------------------


def rate_limit_identity(request: HTTPConnection) -> str:
    """The caller a mutation is charged to: its API key or bearer token when it
    sends one (hashed, never kept in clear), otherwise its IP address."""
    credential = request.headers.get("authorization") or request.headers.get("x-api-key")
    if credential:
        return "key:" + hashlib.sha256(credential.encode()).hexdigest()
    return "ip:" + (request.client.host if request.client else "unknown")


class TokenBuckets:
    """One token bucket per caller, in this process's memory.

    Each process limits on its own, so N server processes allow up to N times
    the rate; a limiter shared through Redis or PostgreSQL is the next step. A
    call is allowed while at least one token is left; a mutation operation with
    several root fields then takes one token per field and may leave the bucket
    in debt, which its next calls wait out.
    """

    def __init__(
        self,
        *,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
    ) -> None:
        self.rate_per_s = rate_per_minute / 60
        self.burst = burst
        self.clock = clock
        self.max_callers = max_callers
        # identity -> (tokens, when counted); insertion order is least recent first.
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, identity: str, tokens: int = 1) -> float | None:
        """None when allowed, otherwise the seconds to wait."""
        now = self.clock()
        left, counted = self._buckets.pop(identity, (float(self.burst), now))
        left = min(float(self.burst), left + (now - counted) * self.rate_per_s)
        if left < 1:
            self._buckets[identity] = (left, now)
            return (1 - left) / self.rate_per_s
        self._buckets[identity] = (left - tokens, now)
        while len(self._buckets) > self.max_callers:
            # The least recent caller starts again with a full bucket.
            del self._buckets[next(iter(self._buckets))]
        return None


def _root_field_count(document: DocumentNode | None, operation_name: str | None) -> int:
    operation = get_operation_ast(document, operation_name) if document else None
    if operation is None:
        return 1
    count = sum(
        1
        for s in operation.selection_set.selections
        if not (isinstance(s, FieldNode) and s.name.value == "__typename")
    )
    return max(1, count)


class MutationRateLimiter:
    """Over the limit a mutation is not executed: the result is one RATE_LIMITED
    error with `retryAfterSeconds`, and the HTTP response carries `Retry-After`."""

    def __init__(self, settings: Settings) -> None:
        self.buckets = TokenBuckets(
            rate_per_minute=settings.mutation_rate_per_minute, burst=settings.mutation_burst
        )

    def refusal(
        self, context: Context, document: DocumentNode | None, operation_name: str | None
    ) -> ExecutionResult | None:
        """Takes the mutation's tokens; the result to answer instead when there are none."""
        wait_s = self.buckets.take(
            rate_limit_identity(context.request), _root_field_count(document, operation_name)
        )
        if wait_s is None:
            return None
        retry_after_s = max(1, math.ceil(wait_s))
        error = RateLimited(retry_after_s)
        if context.response is not None:
            context.response.headers["Retry-After"] = str(retry_after_s)
        return ExecutionResult(
            data=None,
            errors=[
                GraphQLError(
                    str(error),
                    original_error=error,
                    extensions={"retryAfterSeconds": retry_after_s},
                )
            ],
        )


class MutationRateLimit(SchemaExtension):
    def __init__(self, *, limiter: MutationRateLimiter) -> None:
        self.limiter = limiter

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.operation_type is OperationType.MUTATION:
            refusal = self.limiter.refusal(
                execution.context, execution.graphql_document, execution.operation_name
            )
            if refusal is not None:
                # A result set here makes Strawberry skip execution.
                execution.result = refusal
        yield


def is_rate_limited(headers: Mapping[str, str]) -> bool:
    return "retry-after" in headers


# --- Text --------------------------------------------------------------------

NUL_MESSAGE = "Text must not contain the NUL character (U+0000)."


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


class NulInDocument(ValidationRule):
    """PostgreSQL cannot store U+0000 in text or jsonb: a string holding it would
    fail deep in a query as an internal error. It is refused up front instead,
    wherever it appears: in the document here, in the variables by `request_errors`."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            error = InvalidArguments(NUL_MESSAGE)
            self.report_error(GraphQLError(NUL_MESSAGE, node, original_error=error))


# --- Production --------------------------------------------------------------

_SUGGESTION = re.compile(r"\s*Did you mean\b.*$", re.DOTALL)


def hide_suggestions(errors: Iterable[GraphQLError] | None) -> None:
    """Strips every "Did you mean ...?" hint, which would reveal the schema bit by
    bit with introspection off. Strawberry's `disable_field_suggestions` covers
    unknown fields only; arguments, input fields, enum values and types too
    carry hints."""
    for error in errors or ():
        error.message = _SUGGESTION.sub("", error.message)


class HideSuggestions(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        hide_suggestions(result.errors if result is not None else None)


# --- Request body ------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class RequestBodyLimit:
    """Refuses a request body over `max_bytes` with HTTP 413: at once when its
    Content-Length says so, otherwise as soon as the streamed body passes it.

    The connection is not closed: the server discards the rest of the body, so
    the client can finish sending and read the answer (closing on unread data
    would reset the connection and lose the 413)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        if declared is not None and not _has_header(scope, b"transfer-encoding"):
            # The server reads no more than the declared length: nothing to watch.
            await self.app(scope, receive, send)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps(
            {"errors": [{"message": f"Request body larger than {self.max_bytes} bytes."}]}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _has_header(scope: Scope, wanted: bytes) -> bool:
    return any(name == wanted for name, _value in scope["headers"])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
