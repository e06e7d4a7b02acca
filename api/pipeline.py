"""Every GraphQL operation, over HTTP or a websocket, runs through Strawberry's
execution with these two extensions: each cross-cutting concern is written
once, in its own module, and called from here in a fixed order.

One extension of ours rather than one per concern: Strawberry builds every
extension and a context manager per hook afresh for each operation, which cost
a fifth of a simple query's CPU when each concern was an extension of its own.
Strawberry's MaskErrors (`api.errors.PublicErrors`) stays a separate one.

The order of one operation:
1. `on_operation`: the operation gets its own copy of the connection's context
   and unit of work (session, DataLoaders); the parse and validation limits are
   set.
2. `on_parse` / `on_validate`: documents kept parsed and validated by their text.
3. `on_execute`: the limits that read the variables, then the mutation rate
   limit; over either, the operation is not executed and the error is its result.
4. `on_stream_result` (websockets): a query or mutation commits before its
   answer leaves.
5. Leaving: the masking of unexpected errors (MaskErrors), then the transaction
   commits or rolls back, expected errors get their codes, suggestions are
   hidden (production), the HTTP status follows, and the metric and log line
   record the outcome.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import strawberry
from graphql import ASTValidationRule, GraphQLSchema
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.graphql import OperationType

from api.document_limits import (
    ValidTexts,
    cached_parse,
    cost_schema,
    document_rules,
    request_limit_errors,
)
from api.errors import RESULT_TYPES, PublicErrors, give_codes, hide_suggestions
from api.graphql_http import set_http_status, subscription_over_http
from api.observability import Metrics, observe_operation, root_field_label
from api.rate_limit import MutationRateLimiter, rate_limit_refusal
from api.transactions import finish_operation
from core.settings import Environment, Settings
from schema import build_schema
from schema.context import Context

# Documents kept parsed and validated: partner apps and screens send the same
# few over and over.
DOCUMENT_CACHE_SIZE = 1_024


@dataclass(frozen=True)
class PipelineParts:
    """What every operation's steps share for the life of the app."""

    settings: Settings
    metrics: Metrics
    rate_limiter: MutationRateLimiter
    # One tuple of rule classes for the app's lifetime.
    rules: tuple[type[ASTValidationRule], ...]
    valid_texts: ValidTexts
    graphql_schema: Callable[[], GraphQLSchema]
    root_fields: Callable[[], frozenset[str]]


class OperationPipeline(SchemaExtension):
    def __init__(self, parts: PipelineParts) -> None:
        self.parts = parts
        self.context: Context | None = None

    async def on_operation(self) -> AsyncIterator[None]:
        started = time.perf_counter()
        execution = self.execution_context
        parts = self.parts
        execution.parse_options["max_tokens"] = parts.settings.max_tokens
        execution.validation_rules = execution.validation_rules + parts.rules
        # The connection's context (a websocket's is shared by all its
        # operations) is copied for this operation; execution reads it after
        # this point, so the resolvers see the copy and its own session.
        self.context = context = execution.context.for_operation()
        execution.context = context
        try:
            yield
        finally:
            result = execution.result
            await finish_operation(context.operation, result)
            self._conclude(result)
            set_http_status(context, result)
            observe_operation(
                parts.metrics,
                operation_type=self._operation_type(),
                root_field=root_field_label(
                    execution.graphql_document, execution.operation_name, parts.root_fields()
                ),
                result=result if isinstance(result, RESULT_TYPES) else None,
                duration=time.perf_counter() - started,
            )

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.graphql_document is None and execution.query:
            execution.graphql_document = cached_parse(
                execution.query, self.parts.settings.max_tokens
            )
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        query = execution.query
        if query is not None and query in self.parts.valid_texts:
            # Errors set, even none, make Strawberry skip its own validation.
            execution.pre_execution_errors = []
        yield
        document = execution.graphql_document
        if query is not None and document is not None and execution.pre_execution_errors == []:
            self.parts.valid_texts.add(query, document, self.parts.graphql_schema())

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = self.context
        assert context is not None
        kind = execution.operation_type
        if kind is OperationType.SUBSCRIPTION:
            # A subscription lives as long as its socket: each of its reads gets
            # a short session instead of holding one pooled connection that long.
            context.operation.short_sessions = True
        refused = subscription_over_http(context, kind) or self._refusal_by_variables()
        if refused is None and kind is OperationType.MUTATION:
            refused = await rate_limit_refusal(
                limiter=self.parts.rate_limiter,
                context=context,
                document=execution.graphql_document,
                operation_name=execution.operation_name,
            )
        if refused is not None:
            # A result set before execution makes Strawberry skip it.
            execution.result = refused
        yield

    async def on_stream_result(self, result: StreamExecutionResult) -> AsyncIterator[None]:
        # Over a websocket a query or mutation is answered by this result: it is
        # committed before the answer leaves, never after.
        if self.context is not None and self._operation_type() != "subscription":
            await finish_operation(self.context.operation, result)
        self._conclude(result)
        yield

    def _refusal_by_variables(self) -> ExecutionResult | None:
        execution = self.execution_context
        if not execution.variables:
            return None
        known = execution.query and self.parts.valid_texts.cost_uses_variables(execution.query)
        errors = request_limit_errors(
            schema=self.parts.graphql_schema(),
            document=execution.graphql_document,
            operation_name=execution.operation_name,
            variables=execution.variables,
            max_cost=self.parts.settings.max_query_cost,
            max_list_items=self.parts.settings.max_list_items,
            cost_uses_variables=known is not False,
        )
        return ExecutionResult(data=None, errors=errors) if errors else None

    def _conclude(self, result: object) -> None:
        give_codes(result)
        if not self.parts.settings.field_suggestions_enabled:
            hide_suggestions(getattr(result, "errors", None))

    def _operation_type(self) -> str:
        try:
            return self.execution_context.operation_type.value
        except RuntimeError:
            return "unknown"  # the document did not parse


def build_operation_schema(
    *, settings: Settings, metrics: Metrics, rate_limiter: MutationRateLimiter
) -> strawberry.Schema:
    """The schema, with the extensions every operation runs through."""
    graphql_schema: Callable[[], GraphQLSchema]

    @functools.cache
    def root_fields() -> frozenset[str]:
        built = graphql_schema()
        roots = (built.query_type, built.mutation_type, built.subscription_type)
        return frozenset(name for root in roots if root is not None for name in root.fields)

    parts = PipelineParts(
        settings=settings,
        metrics=metrics,
        rate_limiter=rate_limiter,
        rules=tuple(document_rules(settings)),
        valid_texts=ValidTexts(DOCUMENT_CACHE_SIZE),
        graphql_schema=lambda: graphql_schema(),
        root_fields=root_fields,
    )
    # Listed first, ours is left last: it sees the errors as masked.
    schema = build_schema(
        extensions=[
            lambda: OperationPipeline(parts),
            lambda: PublicErrors(retry_after_s=settings.unavailable_retry_after_s),
        ],
        production=settings.environment is Environment.PRODUCTION,
    )
    graphql_schema = cost_schema(schema)
    return schema
