"""Simple queries answered by a plan made once per document.

graphql-core completes every value through its general executor (collecting
fields, checking types, tracking paths for errors, awaiting): for `locate`
that was half of the CPU of a request. The documents clients send for the
root fields in `COMPILED_ROOT_FIELDS` are simple: that one field, whose
resolver returns plain Strawberry objects, and a selection of their plain
fields, unions told apart by inline fragments. For such a document
`compile_query` makes a plan once (which attribute to read, how to serialize
it, under which key); a request then calls the root resolver and fills the
response by the plan.

Anything the plan does not foresee (variables or arguments that do not
coerce, a resolver that raises, a null where the schema forbids one, an
object of a type the plan does not know) makes `run` return None, and the
operation is executed again by graphql-core, which gives the exact answer,
errors included. Only queries are compiled, so running one again has no
effect beyond its cost. A root field opts in here when its resolver needs
nothing of `info` but `info.context`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path
from strawberry.execution import optimized_is_awaitable
from strawberry.types import Info
from strawberry.types.field import StrawberryField

COMPILED_ROOT_FIELDS = frozenset({"locate"})

_BACKREF = "strawberry-definition"


class _Unforeseen(Exception):
    """The plan does not cover this value: graphql-core answers instead."""


@dataclass(frozen=True)
class _Entry:
    key: str
    python_name: str | None  # None for __typename
    non_null: bool = False
    serialize: Callable[[Any], Any] | None = None  # a scalar
    child: _Shape | None = None  # an object or a union


@dataclass
class _Shape:
    """What to answer for an object, by the Python class of that object."""

    entries_by_class: dict[type, tuple[_Entry, ...]] = field(default_factory=dict)
    type_names: dict[type, str] = field(default_factory=dict)

    def complete(self, value: Any) -> dict[str, Any]:
        cls = type(value)
        entries = self.entries_by_class.get(cls)
        if entries is None:
            raise _Unforeseen
        out: dict[str, Any] = {}
        for entry in entries:
            if entry.python_name is None:
                out[entry.key] = self.type_names[cls]
                continue
            item = getattr(value, entry.python_name)
            if item is None:
                if entry.non_null:
                    raise _Unforeseen
                out[entry.key] = None
            elif entry.serialize is not None:
                out[entry.key] = entry.serialize(item)
            else:
                assert entry.child is not None
                out[entry.key] = entry.child.complete(item)
        return out


@dataclass(frozen=True)
class CompiledQuery:
    operation: OperationDefinitionNode
    field_node: FieldNode
    field_definition: GraphQLField
    strawberry_field: StrawberryField
    key: str
    non_null: bool
    shape: _Shape
    # GraphQL argument name -> the resolver's parameter
    parameters: dict[str, str]

    async def run(
        self, *, schema: GraphQLSchema, variables: dict[str, Any] | None, context: Any
    ) -> dict[str, Any] | None:
        """The response's data, or None: then graphql-core must execute the operation."""
        coerced = get_variable_values(
            schema, self.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None
        try:
            arguments = get_argument_values(self.field_definition, self.field_node, coerced)
            value = self._resolve(schema, coerced, arguments, context)
            if optimized_is_awaitable(value):
                value = await value
            if value is None:
                if self.non_null:
                    return None
                return {self.key: None}
            return {self.key: self.shape.complete(value)}
        except Exception:
            # Unforeseen values, arguments that do not coerce (GraphQLError), a
            # failing resolver: graphql-core runs it again and reports it as usual.
            return None

    def _resolve(
        self, schema: GraphQLSchema, coerced: Any, arguments: dict[str, Any], context: Any
    ) -> Any:
        strawberry_field = self.strawberry_field
        resolver = strawberry_field.base_resolver
        assert resolver is not None
        kwargs = {self.parameters[name]: value for name, value in arguments.items()}
        if resolver.info_parameter is not None:
            raw_info: Any = _RootInfo(
                field_name=self.field_node.name.value,
                field_nodes=[self.field_node],
                return_type=self.field_definition.type,
                parent_type=schema.query_type,
                path=Path(None, self.key, "Query"),
                schema=schema,
                fragments={},
                root_value=None,
                operation=self.operation,
                variable_values=coerced,
                context=context,
            )
            kwargs[resolver.info_parameter.name] = Info(_raw_info=raw_info, _field=strawberry_field)
        args: list[Any] = [None] if resolver.self_parameter is not None else []
        return resolver(*args, **kwargs)


@dataclass(frozen=True)
class _RootInfo:
    """What a compiled root resolver may read of graphql-core's resolve info."""

    field_name: str
    field_nodes: list[FieldNode]
    return_type: GraphQLOutputType
    parent_type: GraphQLObjectType | None
    path: Path
    schema: GraphQLSchema
    fragments: dict[str, Any]
    root_value: Any
    operation: OperationDefinitionNode
    variable_values: Any
    context: Any


def compile_query(schema: GraphQLSchema, document: DocumentNode) -> CompiledQuery | None:
    """A plan for a valid document, or None when it is not that simple."""
    if len(document.definitions) != 1:
        return None
    (operation,) = document.definitions
    if (
        not isinstance(operation, OperationDefinitionNode)
        or operation.operation is not OperationType.QUERY
        or operation.directives
        or len(operation.selection_set.selections) != 1
    ):
        return None
    (node,) = operation.selection_set.selections
    if not isinstance(node, FieldNode) or node.directives or node.selection_set is None:
        return None
    if node.name.value not in COMPILED_ROOT_FIELDS or schema.query_type is None:
        return None
    definition = schema.query_type.fields.get(node.name.value)
    strawberry_field = (definition.extensions or {}).get(_BACKREF) if definition else None
    if (
        definition is None
        or not isinstance(strawberry_field, StrawberryField)
        or strawberry_field.base_resolver is None
        or strawberry_field.extensions
    ):
        return None
    parameters: dict[str, str] = {}
    for name, argument in definition.args.items():
        backref = (argument.extensions or {}).get(_BACKREF)
        python_name = getattr(backref, "python_name", None)
        if not isinstance(python_name, str):
            return None
        parameters[name] = python_name
    try:
        shape = _shape(schema, _nullable(definition.type), node.selection_set)
    except _Unforeseen:
        return None
    return CompiledQuery(
        operation=operation,
        field_node=node,
        field_definition=definition,
        strawberry_field=strawberry_field,
        key=(node.alias or node.name).value,
        non_null=isinstance(definition.type, GraphQLNonNull),
        shape=shape,
        parameters=parameters,
    )


def _nullable(type_: GraphQLOutputType) -> GraphQLOutputType:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _shape(schema: GraphQLSchema, type_: Any, selection_set: SelectionSetNode) -> _Shape:
    if isinstance(type_, GraphQLUnionType):
        members = list(type_.types)
    elif isinstance(type_, GraphQLObjectType):
        members = [type_]
    else:
        raise _Unforeseen  # lists, interfaces, enums: graphql-core's
    shape = _Shape()
    for member in members:
        definition = (member.extensions or {}).get(_BACKREF)
        origin = getattr(definition, "origin", None)
        if not isinstance(origin, type) or origin in shape.entries_by_class:
            raise _Unforeseen
        shape.entries_by_class[origin] = _entries(schema, member, type_, selection_set)
        shape.type_names[origin] = member.name
    return shape


def _entries(
    schema: GraphQLSchema,
    object_type: GraphQLObjectType,
    parent: Any,
    selection_set: SelectionSetNode,
) -> tuple[_Entry, ...]:
    entries: list[_Entry] = []
    for selection in selection_set.selections:
        if selection.directives:
            raise _Unforeseen
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else None
            if condition is None or condition in (object_type.name, parent.name):
                entries += _entries(schema, object_type, parent, selection.selection_set)
            elif not (
                isinstance(parent, GraphQLUnionType)
                and condition in {member.name for member in parent.types}
            ):
                raise _Unforeseen  # an interface: graphql-core's
            continue
        if not isinstance(selection, FieldNode) or selection.arguments:
            raise _Unforeseen
        key = (selection.alias or selection.name).value
        if selection.name.value == "__typename":
            entries.append(_Entry(key=key, python_name=None))
            continue
        definition = object_type.fields.get(selection.name.value)
        strawberry_field = (definition.extensions or {}).get(_BACKREF) if definition else None
        if (
            definition is None
            or not isinstance(strawberry_field, StrawberryField)
            or not strawberry_field.is_basic_field
        ):
            raise _Unforeseen
        type_ = _nullable(definition.type)
        non_null = isinstance(definition.type, GraphQLNonNull)
        if isinstance(type_, GraphQLScalarType):
            if selection.selection_set is not None:
                raise _Unforeseen
            entries.append(
                _Entry(key, strawberry_field.python_name, non_null, serialize=type_.serialize)
            )
        elif selection.selection_set is not None:
            child = _shape(schema, type_, selection.selection_set)
            entries.append(_Entry(key, strawberry_field.python_name, non_null, child=child))
        else:
            raise _Unforeseen
    if len({entry.key for entry in entries}) != len(entries):
        raise _Unforeseen  # merging fields of the same key is graphql-core's
    return tuple(entries)
