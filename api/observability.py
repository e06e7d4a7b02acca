"""Metrics and the one structured log line per GraphQL operation (never personal data)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from strawberry.extensions import SchemaExtension

from api.errors import OperationResult

operation_logger = logging.getLogger("patriot.operation")


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    operations: Histogram
    errors: Counter

    @classmethod
    def create(cls) -> Metrics:
        # A registry per app, so that tests and several apps in one process never collide.
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            operations=Histogram(
                "patriot_graphql_operation_seconds",
                "Duration of GraphQL operations",
                ["operation_type", "operation_name", "outcome"],
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            ),
            errors=Counter(
                "patriot_graphql_errors",
                "GraphQL errors by code",
                ["code"],
                registry=registry,
            ),
        )


class OperationObserver(SchemaExtension):
    def __init__(self, *, metrics: Metrics) -> None:
        self.metrics = metrics

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
            operation_name=context.operation_name,
            result=context.result,
            duration=time.perf_counter() - started,
        )


def observe_operation(
    metrics: Metrics,
    *,
    operation_type: str,
    operation_name: str | None,
    result: OperationResult | None,
    duration: float,
) -> None:
    errors = (result.errors if result is not None else None) or []
    codes = sorted({str((e.extensions or {}).get("code", "GRAPHQL")) for e in errors})
    outcome = "error" if errors else "ok"
    name = operation_name or "anonymous"
    metrics.operations.labels(operation_type, name, outcome).observe(duration)
    for code in codes:
        metrics.errors.labels(code).inc()
    if not operation_logger.isEnabledFor(logging.INFO):
        return
    operation_logger.info(
        orjson.dumps(
            {
                "event": "graphql_operation",
                "operation": name,
                "type": operation_type,
                "duration_ms": round(duration * 1000, 2),
                "outcome": outcome,
                "error_codes": codes,
            }
        ).decode()
    )
