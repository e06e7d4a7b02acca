"""One query or mutation over HTTP, run without Strawberry's extension machinery.

Strawberry's `Schema.execute` builds every schema extension afresh for each
operation, with a context manager per hook and phase; for a simple query that
cost more CPU than executing it. The HTTP view calls `OperationRunner.execute`
instead, which takes the same steps in the same order by calling them directly:

1. the checked document (parsed, validated and limited once per text: `api.documents`);
2. the operation's type, refused when the HTTP method does not allow it;
3. the checks that read the variables; the mutation rate limit;
4. the document's compiled plan when it has one (`api.compiled`), otherwise
   graphql-core's execution with Strawberry's resolvers and execution context;
5. then, as the schema extensions do for operations over websockets: errors made
   public (`api.errors`), the transaction committed or rolled back
   (`api.transactions`), the operation observed (`api.observability`), and
   suggestions hidden where the settings say so (`api.limits`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLError, OperationDefinitionNode, execute
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.schema import Schema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_first_operation, get_operation_type

from api.documents import CheckedDocument, DocumentChecker
from api.errors import make_errors_public
from api.limits import MutationRateLimiter, hide_suggestions
from api.observability import Metrics, observe_operation
from api.transactions import finish_transaction
from schema.context import Context


class OperationRunner:
    def __init__(
        self,
        *,
        schema: Schema,
        checker: DocumentChecker,
        rate_limiter: MutationRateLimiter,
        metrics: Metrics,
        hide_suggestions: bool,
    ) -> None:
        self.schema = schema
        self.checker = checker
        self.rate_limiter = rate_limiter
        self.metrics = metrics
        self.hide_suggestions = hide_suggestions

    async def execute(
        self,
        query: str | None,
        *,
        variables: dict[str, Any] | None,
        context: Context,
        root_value: Any,
        operation_name: str | None,
        allowed_operation_types: Iterable[OperationType],
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        """Raises Strawberry's MissingQueryError, CannotGetOperationTypeError and
        InvalidOperationTypeError, which the view turns into HTTP 400."""
        if not query:
            raise MissingQueryError
        started = time.perf_counter()
        operation_type = "unknown"  # until the document parses
        try:
            checked = self.checker.check(query)
        except GraphQLError as error:
            result = ExecutionResult(data=None, errors=[error])
        else:
            document = checked.document
            first = get_first_operation(document)
            if operation_name is None and first is not None and first.name is not None:
                operation_name = first.name.value
            try:
                kind = get_operation_type(document, operation_name)
            except RuntimeError as error:
                raise CannotGetOperationTypeError(operation_name) from error
            if kind not in allowed_operation_types:
                raise InvalidOperationTypeError(kind)
            operation_type = kind.value
            result = await self._run(
                checked=checked,
                kind=kind,
                variables=variables,
                context=context,
                root_value=root_value,
                operation_name=operation_name,
                operation_extensions=operation_extensions,
            )
        make_errors_public(result)
        await finish_transaction(context, result)
        observe_operation(
            self.metrics,
            operation_type=operation_type,
            operation_name=operation_name,
            result=result,
            duration=time.perf_counter() - started,
        )
        if self.hide_suggestions:
            hide_suggestions(result.errors)
        return result

    async def _run(
        self,
        *,
        checked: CheckedDocument,
        kind: OperationType,
        variables: dict[str, Any] | None,
        context: Context,
        root_value: Any,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        checked_errors = self.checker.request_errors(checked, variables)
        if checked_errors:
            return ExecutionResult(data=None, errors=checked_errors)
        if kind is OperationType.MUTATION:
            refusal = self.rate_limiter.refusal(context, checked.document, operation_name)
            if refusal is not None:
                return ExecutionResult(data=None, errors=refusal.errors)
            context.sole_mutation_field = _sole_root_field(checked.document, operation_name)
        if checked.compiled is not None and root_value is None:
            data = await checked.compiled.run(
                schema=self.schema._schema, variables=variables, context=context
            )
            if data is not None:
                return ExecutionResult(data=data, errors=None)
        try:
            outcome: Any = execute(
                self.schema._schema,
                checked.document,
                root_value=root_value,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                executor_class=self.schema.execution_context_class,
                operation_extensions=operation_extensions,
            )
            if optimized_is_awaitable(outcome):
                outcome = await outcome
        except Exception as error:
            # As Strawberry does; made public (masked) like any resolver's error.
            masked = GraphQLError(str(error), original_error=error)
            return ExecutionResult(data=None, errors=[masked])
        assert isinstance(outcome, GraphQLExecutionResult)
        if outcome.errors:
            # Logged before they are made public, so the log keeps the originals.
            self.schema.process_errors(outcome.errors, None)
        return ExecutionResult(data=outcome.data, errors=outcome.errors)


def _sole_root_field(document: DocumentNode, operation_name: str | None) -> bool:
    """Whether the operation selects one root field, plainly: no fragment or
    directive could add another."""
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if operation_name is not None and (
            definition.name is None or definition.name.value != operation_name
        ):
            continue
        selections = definition.selection_set.selections
        return (
            len(selections) == 1
            and isinstance(selections[0], FieldNode)
            and not selections[0].directives
        )
    return False
