"""Metrics and the one structured log line per GraphQL operation (never personal data).

Label values come from a bounded set, never from what a caller names: the
operation's root field when it has one known to the schema, otherwise `other`.
Operation names chosen by clients appear nowhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson
from graphql import FieldNode, get_operation_ast
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from strawberry.extensions import SchemaExtension

from api.errors import OperationResult

operation_logger = logging.getLogger("patriot.operation")


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    operations: Histogram
    errors: Counter
    shared_subscriptions: Gauge
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


class OperationObserver(SchemaExtension):
    def __init__(self, *, metrics: Metrics, root_fields: Callable[[], frozenset[str]]) -> None:
        self.metrics = metrics
        self.root_fields = root_fields

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        try:
            operation_type = context.operation_type.value
        except RuntimeError:
            operation_type = "unknown"  # the document did not parse
        observe_operation(
            self.metrics,
            operation_type=operation_type,
            root_field=self._root_field(),
            result=context.result,
            duration=time.perf_counter() - started,
        )

    def _root_field(self) -> str:
        context = self.execution_context
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name) if document else None
        if operation is None:
            return OTHER
        names = {
            s.name.value
            for s in operation.selection_set.selections
            if isinstance(s, FieldNode) and s.name.value != "__typename"
        }
        if len(names) != 1 or len(operation.selection_set.selections) != 1:
            return OTHER
        (name,) = names
        return name if name in self.root_fields() else OTHER


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
