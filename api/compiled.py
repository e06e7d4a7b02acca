"""Simple operations answered by a plan made once per document.

graphql-core completes every value through its general executor (collecting
fields, checking types, tracking paths for errors, awaiting), and Strawberry
converts arguments and wraps every resolver generically: for `locate` that
was half of the CPU of a request, for `submitReport` a third. The documents
clients send for the root fields in `COMPILED_ROOT_FIELDS` are simple: that
one field, whose resolver returns Strawberry objects, and a selection of their
fields that take no arguments (plain attributes or resolvers that need at most
an `info`), unions told apart by inline fragments. For such a document
`compile_query` makes a plan once (how to convert the arguments, which
attribute to read or resolver to call, how to serialize the value, under which
key); a request then calls the root resolver and fills the response by the plan.

Anything the plan does not foresee (variables or arguments that do not
coerce, a resolver that raises, a null where the schema forbids one, an
object of a type the plan does not know) makes `run` return None, and the
operation is executed again by graphql-core, which gives the exact answer,
errors included. So a root field opts in here only when running it a second
time answers what the first run would have answered and changes nothing more:
a query, or a mutation that is idempotent by its input (`submitReport`: the
retry of a report with its idempotency key returns the case the first run
made). Its resolver must need nothing of `info` but `info.context`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
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
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types import Info
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

COMPILED_ROOT_FIELDS = frozenset({"locate", "submitReport"})

_BACKREF = "strawberry-definition"


class _Unforeseen(Exception):
    """The plan does not cover this value: graphql-core answers instead."""


@dataclass(frozen=True)
class _Request:
    """What resolvers called by a plan may read of the operation they serve."""

    schema: GraphQLSchema
    operation: OperationDefinitionNode
    variable_values: Any  # graphql-core's coerced variables
    context: Any


@dataclass(frozen=True)
class _FieldSite:
    """A field with a resolver, called as Strawberry's resolver wrapper would call it
    (same arguments, an `info` describing the same place in the response)."""

    strawberry_field: StrawberryField
    field_nodes: list[FieldNode]
    return_type: GraphQLOutputType
    parent_type: GraphQLObjectType | None
    path: Path

    def call(self, source: Any, request: _Request, kwargs: dict[str, Any]) -> Any:
        resolver = self.strawberry_field.base_resolver
        assert resolver is not None
        args: list[Any] = [source] if resolver.self_parameter is not None else []
        if resolver.parent_parameter is not None:
            kwargs[resolver.parent_parameter.name] = source
        if resolver.root_parameter is not None:
            kwargs[resolver.root_parameter.name] = source
        if resolver.info_parameter is not None:
            raw_info: Any = _ResolveInfo(
                field_name=self.field_nodes[0].name.value,
                field_nodes=self.field_nodes,
                return_type=self.return_type,
                parent_type=self.parent_type,
                path=self.path,
                schema=request.schema,
                fragments={},
                root_value=None,
                operation=request.operation,
                variable_values=request.variable_values,
                context=request.context,
            )
            kwargs[resolver.info_parameter.name] = Info(
                _raw_info=raw_info, _field=self.strawberry_field
            )
        return resolver(*args, **kwargs)


@dataclass(frozen=True)
class _Entry:
    key: str
    python_name: str | None  # None for __typename
    non_null: bool = False
    serialize: Callable[[Any], Any] | None = None  # a scalar or an enum
    child: _Shape | None = None  # an object or a union
    resolver: _FieldSite | None = None  # None: a plain attribute


@dataclass
class _Shape:
    """What to answer for an object, by the Python class of that object."""

    entries_by_class: dict[type, tuple[_Entry, ...]] = field(default_factory=dict)
    type_names: dict[type, str] = field(default_factory=dict)

    async def complete(self, value: Any, request: _Request) -> dict[str, Any]:
        cls = type(value)
        entries = self.entries_by_class.get(cls)
        if entries is None:
            raise _Unforeseen
        out: dict[str, Any] = {}
        for entry in entries:
            if entry.python_name is None:
                out[entry.key] = self.type_names[cls]
                continue
            if entry.resolver is not None:
                item = entry.resolver.call(value, request, {})
                if optimized_is_awaitable(item):
                    item = await item
            else:
                item = getattr(value, entry.python_name)
            if item is None:
                if entry.non_null:
                    raise _Unforeseen
                out[entry.key] = None
            elif entry.serialize is not None:
                serialized = entry.serialize(item)
                if serialized is None:
                    raise _Unforeseen  # graphql-core reports it
                out[entry.key] = serialized
            else:
                assert entry.child is not None
                out[entry.key] = await entry.child.complete(item, request)
        return out


@dataclass(frozen=True)
class CompiledQuery:
    operation: OperationDefinitionNode
    field_node: FieldNode
    field_definition: GraphQLField
    root: _FieldSite
    key: str
    non_null: bool
    shape: _Shape
    # GraphQL argument name -> the resolver's parameter and how to convert its value
    parameters: dict[str, tuple[str, Callable[[Any], Any]]]

    async def run(
        self, *, schema: GraphQLSchema, variables: dict[str, Any] | None, context: Any
    ) -> dict[str, Any] | None:
        """The response's data, or None: then graphql-core must execute the operation."""
        coerced = get_variable_values(
            schema, self.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None
        request = _Request(
            schema=schema, operation=self.operation, variable_values=coerced, context=context
        )
        try:
            arguments = get_argument_values(self.field_definition, self.field_node, coerced)
            kwargs = {}
            for name, value in arguments.items():
                parameter, convert = self.parameters[name]
                kwargs[parameter] = convert(value)
            value = self.root.call(None, request, kwargs)
            if optimized_is_awaitable(value):
                value = await value
            if value is None:
                if self.non_null:
                    return None
                return {self.key: None}
            return {self.key: await self.shape.complete(value, request)}
        except Exception:
            # Unforeseen values, arguments that do not coerce (GraphQLError), a
            # failing resolver: graphql-core runs it again and reports it as usual.
            return None


@dataclass(frozen=True)
class _ResolveInfo:
    """What a resolver called by a plan may read of graphql-core's resolve info."""

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
    if not isinstance(operation, OperationDefinitionNode) or operation.directives:
        return None
    root_type = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
    }.get(operation.operation)
    if root_type is None or len(operation.selection_set.selections) != 1:
        return None
    (node,) = operation.selection_set.selections
    if not isinstance(node, FieldNode) or node.directives or node.selection_set is None:
        return None
    if node.name.value not in COMPILED_ROOT_FIELDS:
        return None
    definition = root_type.fields.get(node.name.value)
    strawberry_field = (definition.extensions or {}).get(_BACKREF) if definition else None
    if (
        definition is None
        or not isinstance(strawberry_field, StrawberryField)
        or strawberry_field.base_resolver is None
        or strawberry_field.extensions
    ):
        return None
    key = (node.alias or node.name).value
    try:
        parameters: dict[str, tuple[str, Callable[[Any], Any]]] = {}
        for name, argument in definition.args.items():
            backref = (argument.extensions or {}).get(_BACKREF)
            python_name = getattr(backref, "python_name", None)
            if backref is None or not isinstance(python_name, str):
                return None
            parameters[name] = (python_name, _converter(schema, backref.type))
        shape = _shape(
            schema, _nullable(definition.type), node.selection_set, Path(None, key, root_type.name)
        )
    except _Unforeseen:
        return None
    return CompiledQuery(
        operation=operation,
        field_node=node,
        field_definition=definition,
        root=_FieldSite(
            strawberry_field=strawberry_field,
            field_nodes=[node],
            return_type=definition.type,
            parent_type=root_type,
            path=Path(None, key, root_type.name),
        ),
        key=key,
        non_null=isinstance(definition.type, GraphQLNonNull),
        shape=shape,
        parameters=parameters,
    )


def _nullable(type_: GraphQLOutputType) -> GraphQLOutputType:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _keep(value: Any) -> Any:
    return value


def _converter(schema: GraphQLSchema, type_: Any) -> Callable[[Any], Any]:
    """How Strawberry's `convert_argument` turns a coerced value of `type_` into
    the resolver's argument, decided once: inputs become their classes, lists are
    copied (graphql-core shares a default list between requests), leaves stay."""
    strawberry_schema = (schema.extensions or {}).get(_BACKREF)
    if strawberry_schema is None:
        raise _Unforeseen
    scalar_registry = strawberry_schema.schema_converter.scalar_registry
    name_of = strawberry_schema.config.name_converter.from_field
    if isinstance(type_, LazyType):
        type_ = type_.resolve_type()
    if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
        raise _Unforeseen  # Some() wrapping and ID decoding: Strawberry's
    if isinstance(type_, StrawberryOptional):
        return _converter(schema, type_.of_type)
    if isinstance(type_, StrawberryList):
        item = _converter(schema, type_.of_type)
        if item is _keep:
            return lambda value: value if value is None or value is UNSET else list(value)
        return lambda value: (
            value if value is None or value is UNSET else [item(element) for element in value]
        )
    if (
        is_scalar(type_, scalar_registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    ):
        return _keep
    if not has_object_definition(type_):
        raise _Unforeseen
    definition = type_.__strawberry_definition__
    if not definition.is_input or definition.from_input is not None:
        raise _Unforeseen
    cls: Any = type_
    # As Strawberry does: a field without a default is None unless given.
    implicit = {
        f.python_name: None
        for f in definition.fields
        if f.default_value is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    fields = tuple(
        (name_of(f), f.python_name, _converter(schema, f.resolve_type(type_definition=definition)))
        for f in definition.fields
    )

    def convert(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        kwargs = dict(implicit)
        for graphql_name, python_name, convert_field in fields:
            if graphql_name in value:
                kwargs[python_name] = convert_field(value[graphql_name])
        return cls(**kwargs)

    return convert


def _shape(
    schema: GraphQLSchema, type_: Any, selection_set: SelectionSetNode, path: Path
) -> _Shape:
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
        shape.entries_by_class[origin] = _entries(schema, member, type_, selection_set, path)
        shape.type_names[origin] = member.name
    return shape


def _entries(
    schema: GraphQLSchema,
    object_type: GraphQLObjectType,
    parent: Any,
    selection_set: SelectionSetNode,
    path: Path,
) -> tuple[_Entry, ...]:
    entries: list[_Entry] = []
    for selection in selection_set.selections:
        if selection.directives:
            raise _Unforeseen
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else None
            if condition is None or condition in (object_type.name, parent.name):
                entries += _entries(schema, object_type, parent, selection.selection_set, path)
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
            or strawberry_field.extensions
            or definition.args
        ):
            raise _Unforeseen
        field_path = Path(path, key, object_type.name)
        resolver = (
            None
            if strawberry_field.base_resolver is None
            else _FieldSite(
                strawberry_field=strawberry_field,
                field_nodes=[selection],
                return_type=definition.type,
                parent_type=object_type,
                path=field_path,
            )
        )
        type_ = _nullable(definition.type)
        non_null = isinstance(definition.type, GraphQLNonNull)
        python_name = strawberry_field.python_name
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            if selection.selection_set is not None:
                raise _Unforeseen
            entries.append(
                _Entry(key, python_name, non_null, serialize=type_.serialize, resolver=resolver)
            )
        elif selection.selection_set is not None:
            child = _shape(schema, type_, selection.selection_set, field_path)
            entries.append(_Entry(key, python_name, non_null, child=child, resolver=resolver))
        else:
            raise _Unforeseen
    if len({entry.key for entry in entries}) != len(entries):
        raise _Unforeseen  # merging fields of the same key is graphql-core's
    return tuple(entries)
