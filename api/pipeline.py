"""Every GraphQL operation, over HTTP or a websocket, runs through Strawberry's
execution with these extensions: each cross-cutting concern is written once.

Strawberry enters the extensions in this order and leaves them in reverse:
the observer sees the final outcome; error codes and masking shape what the
caller reads; the HTTP status follows from that; the transaction commits or
rolls back before any of them; the limits refuse an operation before it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import strawberry
from graphql import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
)

from api.document_limits import CachedParsing, RequestLimits, cost_schema, document_rules
from api.errors import ErrorCodes, HideSuggestions, PublicErrors
from api.graphql_http import HttpStatus, NoSubscriptionsOverHttp
from api.observability import Metrics, OperationObserver
from api.rate_limit import MutationRateLimit, MutationRateLimiter
from api.transactions import TransactionPerOperation
from core.settings import Environment, Settings
from schema import build_schema

ExtensionFactory = Callable[[], SchemaExtension]
# Documents kept parsed and validated: partner apps and screens send the same
# few over and over.
DOCUMENT_CACHE_SIZE = 1_024


def build_operation_schema(
    *, settings: Settings, metrics: Metrics, rate_limiter: MutationRateLimiter
) -> strawberry.Schema:
    """The schema, with the extensions every operation runs through."""
    # One list of rule classes for the app's lifetime: Strawberry's validation
    # cache is keyed by the rules as well as by the document.
    rules: list[type[ASTValidationRule]] = document_rules(settings)

    @functools.cache
    def root_fields() -> frozenset[str]:
        graphql_schema = costed()
        roots = (
            graphql_schema.query_type,
            graphql_schema.mutation_type,
            graphql_schema.subscription_type,
        )
        return frozenset(name for root in roots if root is not None for name in root.fields)

    extensions: list[ExtensionFactory] = [
        lambda: OperationObserver(metrics=metrics, root_fields=root_fields),
        HttpStatus,
        ErrorCodes,
        PublicErrors,
        TransactionPerOperation,
        lambda: MaxTokensLimiter(settings.max_tokens),
        CachedParsing,
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        NoSubscriptionsOverHttp,
        lambda: RequestLimits(
            schema=costed,
            max_cost=settings.max_query_cost,
            max_list_items=settings.max_list_items,
        ),
        lambda: MutationRateLimit(limiter=rate_limiter),
    ]
    if not settings.field_suggestions_enabled:
        extensions.insert(1, HideSuggestions)
    schema = build_schema(
        extensions=extensions, production=settings.environment is Environment.PRODUCTION
    )
    costed = cost_schema(schema)
    return schema
