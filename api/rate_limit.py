"""The mutation rate limit: per caller, every mutation field counted.

A caller is its authenticated principal (a partner, or a staff subject), never
the text of a header: `Bearer  x` and `Bearer x` are the same token, and a junk
credential is refused before it could open a bucket of its own. Anonymous
callers are counted by their address. Every root mutation field the operation
would execute costs one, wherever it stands (aliases, inline fragments,
fragment spreads), so batching mutations into one document saves nothing.

Buckets are a sliding window of the `limits` package (its sliding window
counter: two fixed windows weighted, no per-hit bookkeeping): about BURST
mutations in any window of BURST / RATE minutes, which allows RATE a minute
over time and no more than BURST at once. Each server process counts on its own.
"""

from __future__ import annotations

import math
import time

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from strawberry.types import ExecutionResult

from core.errors import RateLimited
from core.settings import Settings
from domain.access import Principal
from schema.context import Context


class MutationRateLimiter:
    """Over the limit a mutation is not executed: the result is one RATE_LIMITED
    error with `retryAfterSeconds`, and an HTTP response carries `Retry-After`."""

    def __init__(self, settings: Settings) -> None:
        burst = settings.mutation_burst
        window_s = max(1, math.ceil(burst * 60 / settings.mutation_rate_per_minute))
        self.item: RateLimitItem = RateLimitItemPerSecond(burst, window_s)
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def wait_s(self, caller: str, cost: int) -> float | None:
        """Takes `cost` from the caller's bucket: None when allowed, otherwise
        how long to wait (nothing is taken then)."""
        if cost <= 0:
            return None
        if cost <= self.item.amount and await self.limiter.hit(self.item, caller, cost=cost):
            return None
        stats = await self.limiter.get_window_stats(self.item, caller)
        return max(1.0, stats.reset_time - time.time())


def caller_identity(context: Context) -> str:
    """Whose bucket a mutation is taken from."""
    principal: Principal = context.principal
    if not principal.is_anonymous:
        return f"{principal.kind}:{principal.subject}"
    client = context.request.client
    return "ip:" + (client.host if client else "unknown")


def mutation_field_count(document: DocumentNode | None, operation_name: str | None) -> int:
    """Root fields the mutation executes: distinct response keys, through
    fragments, `__typename` left out."""
    operation = get_operation_ast(document, operation_name) if document else None
    if document is None or operation is None:
        return 0
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return len(_response_keys(operation.selection_set, fragments, set()))


def _response_keys(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    visited: set[str],
) -> set[str]:
    keys: set[str] = set()
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value != "__typename":
                keys.add((selection.alias or selection.name).value)
        elif isinstance(selection, InlineFragmentNode):
            keys |= _response_keys(selection.selection_set, fragments, visited)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in visited:
                visited.add(name)  # validation refuses cycles; this only stops them
                keys |= _response_keys(fragment.selection_set, fragments, visited)
    return keys


async def rate_limit_refusal(
    *,
    limiter: MutationRateLimiter,
    context: Context,
    document: DocumentNode | None,
    operation_name: str | None,
) -> ExecutionResult | None:
    """Takes the mutation's tokens; the result to answer instead when there are none."""
    cost = mutation_field_count(document, operation_name)
    wait_s = await limiter.wait_s(caller_identity(context), cost)
    return None if wait_s is None else refusal(context, math.ceil(wait_s))


def refusal(context: Context, retry_after_s: int) -> ExecutionResult:
    error = RateLimited(retry_after_s)
    if context.response is not None:
        context.response.headers["Retry-After"] = str(retry_after_s)
    return ExecutionResult(
        data=None,
        errors=[
            GraphQLError(
                str(error), original_error=error, extensions={"retryAfterSeconds": retry_after_s}
            )
        ],
    )
