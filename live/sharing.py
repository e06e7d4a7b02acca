"""Which `caseEvents` subscriptions may share one execution (live/groups.py)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
)

from domain.access import Principal
from domain.event_feed import (
    FeedPosition,
)

logger = logging.getLogger("patriot.live")

SHARED_FIELD = "caseEvents"


@dataclass
class FeedRoot:
    """Root value of a `caseEvents` execution started by this module, not by a client.

    The resolver starts after `resume_after` (as it does after an `after`
    cursor) and writes into `position` the event of every update it yields, so
    that a shared execution knows which event each of its results is about,
    and in `more_ready` whether the next event was already waiting then: a
    group holds that result's frames for the next one, to write them together.
    """

    resume_after: FeedPosition | None = None
    position: FeedPosition | None = None
    more_ready: bool = False


@dataclass(frozen=True)
class ShareKey:
    """What makes two subscriptions receive identical results."""

    query: str
    operation_name: str | None
    variables: bytes  # canonical JSON
    # The principal without who it is and when its token expires: exactly what
    # decides which cases and fields it may see. Whatever is added to Principal
    # later separates groups too, until it is stripped here on purpose.
    scope: Principal


@dataclass(frozen=True)
class _Shape:
    after_variable: str | None  # the variable given as `after`, if any
    after_default: bool  # that variable has a non-null default


# Documents up to this many characters have their shape remembered; a client
# sending huge ones pays for their parsing each time and fills no cache.
SHAPE_CACHE_MAX_CHARS = 8_000


def _shareable_shape(query: str, operation_name: str | None) -> _Shape | None:
    """A subscription whose only field is `caseEvents` without a literal `after`.

    Anything else (queries, mutations, other subscriptions, directives, a
    document that does not parse) runs alone, exactly as Strawberry runs it.
    """
    if len(query) > SHAPE_CACHE_MAX_CHARS:
        return _parse_shape(query, operation_name)
    return _remembered_shape(query, operation_name)


def _parse_shape(query: str, operation_name: str | None) -> _Shape | None:
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    operation = operations[0]
    selections = operation.selection_set.selections
    if (
        operation.operation is not OperationType.SUBSCRIPTION
        or operation.directives
        or len(selections) != 1
    ):
        return None
    selection = selections[0]
    if (
        not isinstance(selection, FieldNode)
        or selection.name.value != SHARED_FIELD
        or selection.directives
    ):
        return None
    after = next((a.value for a in selection.arguments or () if a.name.value == "after"), None)
    if after is None or isinstance(after, NullValueNode):
        return _Shape(after_variable=None, after_default=False)
    if not isinstance(after, VariableNode):
        return None
    name = after.name.value
    default = next(
        (
            v.default_value
            for v in operation.variable_definitions or ()
            if v.variable.name.value == name
        ),
        None,
    )
    return _Shape(
        after_variable=name,
        after_default=default is not None and not isinstance(default, NullValueNode),
    )


_remembered_shape = functools.lru_cache(maxsize=256)(_parse_shape)


def share_key(
    *, query: str, variables: object, operation_name: str | None, principal: Principal
) -> ShareKey | None:
    """The group a subscription may join, or None when it must run alone.

    A subscription resuming `after` a cursor runs alone: it replays its own
    past first, which no group could share.
    """
    shape = _shareable_shape(query, operation_name)
    if shape is None or not isinstance(variables, dict | None):
        return None
    variables = variables or {}
    if shape.after_variable is not None and (
        variables.get(shape.after_variable) is not None
        or (shape.after_variable not in variables and shape.after_default)
    ):
        return None
    try:
        canonical = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    return ShareKey(
        query=query,
        operation_name=operation_name,
        variables=canonical,
        scope=replace(principal, subject="", expires_at=None),
    )
