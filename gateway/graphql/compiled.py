"""Row builders generated once per selection, for the fast lists of ``execution.py``.

A page of 1,000 actions is built by one function per selection, written out as Python source the
first time that selection is seen: per selected field one attribute read, one type check for
the common case (a ``str`` for ``String``, an ``int`` in range for ``Int``, an enum member) and
the type's own coercion for everything else, then one dict display. Looping over a list of
columns per row cost more than the values themselves.

The generated functions behave exactly like ``execution._value``: whatever it would refuse (a
null in a non-null field, a value the type's coercion rejects, an object of another type)
raises ``Fallback`` so that graphql-core completes the list and reports the error.
"""

from __future__ import annotations

import keyword
from collections import OrderedDict
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLResolveInfo, Undefined
from graphql.type.scalars import serialize_boolean, serialize_int, serialize_string

# (response key, field name, read, coerce, non-null, nested plan)
Column = tuple[str, str, Callable[[Any], Any], Callable[[Any], Any] | None, bool, "Plan | None"]
Plan = tuple[GraphQLObjectType, Sequence[Column]]
Builder = Callable[[Any, GraphQLResolveInfo], dict[str, Any]]

MAX_BUILDERS = 1024  # distinct selections kept; clients send the same few again and again
_INT32 = (-(2**31), 2**31 - 1)


class Fallback(Exception):
    """This list is graphql-core's to complete."""


_builders: OrderedDict[tuple[Any, ...], Builder] = OrderedDict()


def builder(plan: Plan) -> Builder:
    """The compiled builder of ``plan``'s objects, generated on first use."""
    key = signature(plan)
    found = _builders.get(key)
    if found is not None:
        _builders.move_to_end(key)
        return found
    built = _compile(plan)
    _builders[key] = built
    if len(_builders) > MAX_BUILDERS:
        _builders.popitem(last=False)
    return built


def signature(plan: Plan) -> tuple[Any, ...]:
    """What the generated code depends on: the type (its fields' reads, types and coercions
    come from the schema) and, per response key, which field and its own selection."""
    object_type, columns = plan
    return (
        object_type,
        tuple(
            (key, name, signature(nested) if nested is not None else None)
            for key, name, _, _, _, nested in columns
        ),
    )


def _compile(plan: Plan) -> Builder:
    names: dict[str, Any] = {"Fallback": Fallback, "Undefined": Undefined}
    lines: list[str] = []
    entry = _emit(plan, names, lines)
    exec(compile("\n".join(lines), f"<row builder {plan[0].name}>", "exec"), names)
    built: Builder = names[entry]
    return built


def _emit(plan: Plan, names: dict[str, Any], lines: list[str]) -> str:
    """Appends the source of the builder of ``plan`` (and of its nested objects first);
    returns its name."""
    object_type, columns = plan
    nested_builders = [
        _emit(nested, names, lines) if nested is not None else None for *_, nested in columns
    ]
    fn = f"build_{len(names)}"
    body = [f"def {fn}(item, info):"]
    if object_type.is_type_of is not None:
        check = _bind(names, "is_type_of", object_type.is_type_of)
        body += [f"    if not {check}(item, info):", "        raise Fallback"]
    values = []
    for i, ((key, _, read, coerce, non_null, _), sub) in enumerate(
        zip(columns, nested_builders, strict=True)
    ):
        v, r = f"v{i}", f"r{i}"
        body.append(f"    {v} = {_read(names, read)}")
        on_null = "raise Fallback" if non_null else f"{r} = None"
        body += [f"    if {v} is None:", f"        {on_null}"]
        if sub is not None:
            body += ["    else:", f"        {r} = {sub}({v}, info)"]
        else:
            assert coerce is not None
            fast = _fast_check(names, coerce, v)
            if fast is not None:
                body += [f"    elif {fast}:", f"        {r} = {v}"]
            if (enum := _enum_names(coerce)) is not None:
                kind, members = enum
                body += [
                    f"    elif type({v}) is {_bind(names, 'enum', kind)}:",
                    f"        {r} = {_bind(names, 'names', members)}[{v}]",
                ]
            general = _bind(names, "coerce", coerce)
            body += [
                "    else:",
                f"        {r} = {general}({v})",
                f"        if {r} is None or {r} is Undefined:",
                "            raise Fallback",
            ]
        values.append(f"{key!r}: {r}")
    body.append("    return {" + ", ".join(values) + "}")
    lines += body
    names[fn] = None  # reserves the name (counted by ``len(names)``)
    return fn


def _bind(names: dict[str, Any], stem: str, value: Any) -> str:
    name = f"{stem}_{len(names)}"
    names[name] = value
    return name


def _read(names: dict[str, Any], read: Callable[[Any], Any]) -> str:
    """``item.attribute`` for a plain attribute (an ``attrgetter`` of one name), otherwise a
    call of the reader (a plain method)."""
    attribute = _attribute(read)
    if attribute is not None:
        return f"item.{attribute}"
    return f"{_bind(names, 'read', read)}(item)"


def _attribute(read: Callable[[Any], Any]) -> str | None:
    text = repr(read)  # operator.attrgetter('name')
    prefix = "operator.attrgetter('"
    if not (text.startswith(prefix) and text.endswith("')")):
        return None
    name = text[len(prefix) : -2]
    if not name.isidentifier() or keyword.iskeyword(name):
        return None
    return name


def _fast_check(names: dict[str, Any], coerce: Callable[[Any], Any], v: str) -> str | None:
    """A condition under which ``coerce(v)`` is ``v`` itself, checked inline."""
    if coerce is serialize_string:
        return f"type({v}) is str"
    if coerce is serialize_int:
        low, high = _INT32
        return f"type({v}) is int and {low} <= {v} <= {high}"
    if coerce is serialize_boolean:
        return f"type({v}) is bool"
    if coerce is int:  # Long
        return f"type({v}) is int"
    return None


def _enum_names(coerce: Callable[[Any], Any]) -> tuple[type[Enum], dict[Enum, str]] | None:
    """For a Strawberry enum's coercion: its Python enum and each member's name, as the
    coercion finds it (the first name whose value equals the member's)."""
    enum_type = getattr(coerce, "__self__", None)
    wrapped = getattr(enum_type, "wrapped_cls", None)
    if not isinstance(enum_type, GraphQLEnumType) or not (
        isinstance(wrapped, type) and issubclass(wrapped, Enum)
    ):
        return None
    found: dict[Enum, str] = {}
    for member in wrapped:
        for name, value in enum_type.values.items():
            if member.value == value.value:
                found[member] = name
                break
    return wrapped, found
