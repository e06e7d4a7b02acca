"""Metrics and the one structured log line per GraphQL operation (never personal data).

Label values come from a bounded set, never from what a caller names: the
operation's root field when it has one known to the schema, otherwise `other`.
Operation names chosen by clients appear nowhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
from graphql import DocumentNode, FieldNode, get_operation_ast
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.errors import OperationResult

operation_logger = logging.getLogger("patriot.operation")


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    operations: Histogram
    errors: Counter
    shared_subscriptions: Gauge
    http_read_guard: Gauge
    connections_refused: Counter

    @classmethod
    def create(cls) -> Metrics:
        # A registry per app, so that tests and several apps in one process never collide.
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            operations=Histogram(
                "patriot_graphql_operation_seconds",
                "Duration of GraphQL operations",
                ["operation_type", "root_field", "outcome"],
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            ),
            errors=Counter(
                "patriot_graphql_errors",
                "GraphQL errors by code",
                ["code"],
                registry=registry,
            ),
            http_read_guard=Gauge(
                "patriot_http_read_guard",
                "1 when requests are read behind the header and body timeouts; 0 when this "
                "uvicorn release lacks what the guard wraps (api/http_guard.py)",
                registry=registry,
            ),
            shared_subscriptions=Gauge(
                "patriot_live_shared_subscriptions",
                "1 when caseEvents subscriptions share executions; 0 when this Strawberry "
                "release is not the one the sharing was built on (live/handler.py)",
                registry=registry,
            ),
            connections_refused=Counter(
                "patriot_connections_refused",
                "Connections refused or closed by a limit or a credential check, by reason",
                ["reason"],
                registry=registry,
            ),
        )


OTHER = "other"


def root_field_label(
    document: DocumentNode | None, operation_name: str | None, known: frozenset[str]
) -> str:
    """The operation's one root field when the schema has it, otherwise `other`."""
    operation = get_operation_ast(document, operation_name) if document else None
    if operation is None or len(operation.selection_set.selections) != 1:
        return OTHER
    selection = operation.selection_set.selections[0]
    if isinstance(selection, FieldNode) and selection.name.value in known:
        return selection.name.value
    return OTHER


def observe_operation(
    metrics: Metrics,
    *,
    operation_type: str,
    root_field: str,
    result: OperationResult | None,
    duration: float,
) -> None:
    errors = (result.errors if result is not None else None) or []
    codes = sorted({str((e.extensions or {}).get("code", "GRAPHQL")) for e in errors})
    outcome = "error" if errors else "ok"
    metrics.operations.labels(operation_type, root_field, outcome).observe(duration)
    for code in codes:
        metrics.errors.labels(code).inc()
    if not operation_logger.isEnabledFor(logging.INFO):
        return
    operation_logger.info(
        orjson.dumps(
            {
                "event": "graphql_operation",
                "root_field": root_field,
                "type": operation_type,
                "duration_ms": round(duration * 1000, 2),
                "outcome": outcome,
                "error_codes": codes,
            }
        ).decode()
    )
