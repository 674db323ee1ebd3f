"""Resolution and verification: fields against the mapping, functions against the registry, types checked.

The field types are a mapping ``name -> Elasticsearch type`` as ``job.client.fieldcaps.field_types_from_caps``
gives it (a conflict between indices is ``"keyword,text"``). As Elasticsearch's analyzer and verifier:

* an unknown field is ``Unknown column [name]`` (with ``did you mean``); an optional field ``?name`` that
  no index maps is the null literal;
* a ``text`` field searches its one ``keyword`` sub-field for exact matches (``==``, ``:``, ``like``, the
  string functions); with none: ``No keyword/multi-field defined exact matches for [f]; ...``;
* ``:``, ``like`` and ``regex`` need strings, the string functions need strings, ``cidrMatch`` an ip, the
  arithmetic numbers; QL's messages (``first argument of [...] must be [string], found value [x] type
  [long]``);
* functions: ``Unknown function [x]``, ``error building [f]: expects ...``, the ``~`` form only where it
  exists, constant arguments where required.

Every problem found is reported (``Found N problems``), not just the first.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Callable, Mapping

from job.eql.ast import (
    And,
    Arith,
    Call,
    Compare,
    Expr,
    Field,
    In,
    InsensitiveEq,
    IsNotNull,
    IsNull,
    Like,
    Literal,
    MatchOp,
    Neg,
    Not,
    Or,
    Range,
    Regex,
    any_node,
    map_children,
)
from job.eql.errors import EqlVerificationError, Problem
from job.eql.functions import FUNCTIONS, FunctionDef
from job.eql.statements import did_you_mean
from job.eql.values import DATE_TYPES, FLOAT_TYPES, INTEGER_TYPES, KEYWORD_TYPES, SUPPORTED_TYPES, TEXT_TYPES

_CONTAINERS = frozenset({"object", "nested", "flattened"})
_ORDINALS = ("first", "second", "third", "fourth", "fifth")


def type_name(es_type: str) -> str:
    """The QL data type name Elasticsearch prints in messages (``datetime`` for dates, ``keyword`` family)."""
    if es_type in ("date", "date_nanos"):
        return "datetime"
    return es_type


class FieldTypes:
    """The mapping seen by a query: lookups, text fields' keyword sub-fields, conflicts, suggestions."""

    def __init__(self, types: Mapping[str, str]) -> None:
        self.types = {
            name: tuple(part.strip() for part in spec.split(",") if part.strip()) for name, spec in types.items()
        }

    def merged(self, name: str) -> str | None:
        """The one type of ``name`` (keyword family and date family conflicts merge), None if unknown."""
        kinds = self.types.get(name)
        if not kinds:
            return None
        unique = tuple(dict.fromkeys(kinds))
        if len(unique) == 1:
            return unique[0]
        if set(unique) <= KEYWORD_TYPES:
            return "keyword"
        if set(unique) <= DATE_TYPES:
            return "date_nanos" if "date_nanos" in unique else "date"
        return ",".join(unique)

    def exact(self, name: str) -> tuple[str | None, str | None]:
        """(the name searched for exact matches, or a problem message) for a text field."""
        prefix = name + "."
        candidates = [
            other
            for other, kinds in self.types.items()
            if other.startswith(prefix) and "." not in other[len(prefix) :] and set(kinds) <= KEYWORD_TYPES
        ]
        if len(candidates) == 1:
            return candidates[0], None
        if not candidates:
            return None, (
                f"No keyword/multi-field defined exact matches for [{name}]; define one or use MATCH/QUERY instead"
            )
        return None, f"Multiple exact keyword candidates available for [{name}]; specify which one to use"

    def nested_parent(self, name: str) -> str | None:
        cut = name.rfind(".")
        while cut > 0:
            if "nested" in self.types.get(name[:cut], ()):
                return name[:cut]
            cut = name.rfind(".", 0, cut)
        return None

    def suggestions(self, name: str) -> tuple[str, ...]:
        # a Levenshtein similarity of 0.5 needs lengths within a factor of two: skip the rest cheaply
        return tuple(
            other
            for other, kinds in self.types.items()
            if len(name) / 2 <= len(other) <= len(name) * 2 and not set(kinds) & _CONTAINERS
        )


@dc.dataclass
class _Resolver:
    fields: FieldTypes
    text: str
    problems: list[Problem] = dc.field(default_factory=list)

    def fail(self, message: str, node: Expr) -> None:
        self.problems.append(Problem(message, node.start, max(1, node.end - node.start)))

    def source(self, node: Expr) -> str:
        return self.text[node.start : node.end] if self.text and node.end > node.start else "?"

    # -- fields --------------------------------------------------------------------------------------

    def field(self, node: Field) -> Expr:
        merged = self.fields.merged(node.name)
        nested = self.fields.nested_parent(node.name)
        if nested is not None and merged is not None:
            self.fail(
                f"Cannot use field [{node.name}] type [{type_name(merged)}] with unsupported nested type in hierarchy "
                f"(field [{nested}])",
                node,
            )
            return node
        if merged is None or merged in _CONTAINERS:
            if node.optional and merged is None:
                return Literal(None, start=node.start, end=node.end)
            if merged == "nested":
                self.fail(
                    f"Cannot use field [{node.name}] type [nested] due to nested fields not being supported yet", node
                )
            elif merged is not None:
                self.fail(f"Cannot use field [{node.name}] type [{merged}] only its subfields", node)
            else:
                message = did_you_mean(f"Unknown column [{node.name}]", node.name, self.fields.suggestions(node.name))
                self.fail(message, node)
            return node
        if "," in merged:
            kinds = merged.split(",")
            listed = ", ".join(f"[{kind}]" for kind in kinds)
            self.fail(
                f"Cannot use field [{node.name}] due to ambiguities being mapped as [{len(kinds)}] incompatible "
                f"types: {listed}",
                node,
            )
            return node
        if merged not in SUPPORTED_TYPES:
            self.fail(f"Cannot use field [{node.name}] with unsupported type [{merged}]", node)
            return node
        exact: str | None = node.name
        if merged in TEXT_TYPES:
            exact, _ = self.fields.exact(node.name)
        return dc.replace(node, es_type=merged, exact=exact)

    # -- the walk ------------------------------------------------------------------------------------

    def resolve(self, node: Expr) -> Expr:
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, Literal):
            return node
        if isinstance(node, And | Or):
            return dc.replace(node, children=tuple(self.resolve(child) for child in node.children))
        if isinstance(node, Not | Neg | IsNull | IsNotNull):
            return dc.replace(node, operand=self.resolve(node.operand))
        if isinstance(node, Compare | Arith | InsensitiveEq):
            resolved = dc.replace(node, left=self.resolve(node.left), right=self.resolve(node.right))
            if isinstance(resolved, Arith):
                for index, side in enumerate((resolved.left, resolved.right)):
                    self.expect(side, "numeric", resolved, index, exact=False)
            else:  # BinaryComparison: the left side must have exact values (a text field needs a keyword)
                self.expect(resolved.left, "any", resolved, 0)
            return resolved
        if isinstance(node, In):
            items = tuple(self.resolve(item) for item in node.items)
            resolved_in = dc.replace(node, value=self.resolve(node.value), items=items)
            if node.insensitive:
                self.expect(resolved_in.value, "string", resolved_in, 0)
                for index, item in enumerate(resolved_in.items, 1):
                    self.expect(item, "string", resolved_in, index, exact=False)
            else:
                self.in_list(resolved_in)
            return resolved_in
        if isinstance(node, MatchOp):
            resolved_match = dc.replace(node, value=self.resolve(node.value))
            ordinal = 0 if node.op == ":" else None  # ':' is a comparison, like/regex take a DEFAULT ordinal
            self.expect(resolved_match.value, "string", resolved_match, ordinal)
            for index, pattern in enumerate(node.patterns, 1):
                if pattern.value is None:
                    self.fail(
                        f"argument of [{self.source(resolved_match)}] must be a constant string, found [null]", pattern
                    )
                self.expect(pattern, "string", resolved_match, index if node.op == ":" else None)
            return resolved_match
        if isinstance(node, Like | Regex):
            return dc.replace(node, value=self.resolve(node.value))
        if isinstance(node, Range):
            return map_children(node, self.resolve)
        return self.call(node)

    def call(self, node: Call) -> Expr:
        definition = FUNCTIONS.get(node.name)
        args = tuple(self.resolve(arg) for arg in node.args)
        resolved = dc.replace(node, args=args)
        if definition is None:
            self.fail(did_you_mean(f"Unknown function [{node.name}]", node.name, tuple(FUNCTIONS)), node)
            return resolved
        if node.insensitive and not definition.insensitive:
            self.fail(f"Function [{node.name}] does not support case-(in)sensitivity", node)
        count = len(args)
        if count < definition.min_args or (definition.max_args is not None and count > definition.max_args):
            self.fail(f"error building [{node.name}]: {definition.arity}", node)
            return resolved
        single = definition.max_args == 1 or definition.name == "concat"  # QL's DEFAULT ordinal: no "first"
        for index, arg in enumerate(args):
            self.expect(arg, definition.param(index), resolved, None if single else index, definition, index)
        return resolved

    def in_list(self, node: In) -> None:
        """QL's In: every item a constant, each of a type compatible with the value's (``1st argument of ...``)."""
        for item in node.items:
            if not is_foldable(item):
                offender = item.name if isinstance(item, Field) else self.source(item)
                self.fail(
                    f"Comparisons against fields are not (currently) supported; offender [{offender}] in "
                    f"[{self.source(node)}]",
                    item,
                )
                return
        wanted = data_type(node.value)
        for number, item in enumerate(node.items, 1):
            found = data_type(item)
            if not _compatible(wanted, found):
                self.fail(
                    f"{_ordinal(number)} argument of [{self.source(node)}] must be [{wanted}], found value "
                    f"[{self.source(item)}] type [{found}]",
                    item,
                )
                return

    def expect(
        self,
        arg: Expr,
        kind: str,
        owner: Expr,
        index: int | None,
        definition: FunctionDef | None = None,
        position: int | None = None,
        exact: bool = True,
    ) -> None:
        """QL's TypeResolutions: the argument's type, then exactness (text), then constancy. ``index`` is the
        ordinal shown (None: QL's DEFAULT, no ordinal), ``position`` the argument's place in the call."""
        actual = data_type(arg)
        ordinal = f"{_ORDINALS[index]} " if index is not None and index < len(_ORDINALS) else ""
        accepted = _ACCEPTS[kind]
        if actual not in ("null", "unknown") and not accepted(actual):
            wanted = {"string": "string", "numeric": "numeric", "integer": "integer", "ip": "ip", "boolean": "boolean"}
            self.fail(
                f"{ordinal}argument of [{self.source(owner)}] must be [{wanted.get(kind, kind)}], "
                f"found value [{self.source(arg)}] type [{actual}]",
                arg,
            )
            return
        if exact and isinstance(arg, Field) and arg.es_type in TEXT_TYPES and arg.exact is None:
            _, reason = self.fields.exact(arg.name)
            which = f"{ordinal}argument " if ordinal else ""
            self.fail(f"[{self.source(owner)}] cannot operate on {which}field of data type [text]: {reason}", arg)
        if definition is not None and position in definition.constants and not is_foldable(arg):
            received = self.source(arg)
            self.fail(f"{ordinal}argument of [{self.source(owner)}] must be a constant, received [{received}]", arg)


def data_type(node: Expr) -> str:
    """The QL type name of an expression (``unknown`` where it cannot be told, e.g. an unresolved field)."""
    if isinstance(node, Literal):
        value = node.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "integer" if -(2**31) <= value < 2**31 else "long"
        if isinstance(value, float):
            return "double"
        return "keyword"
    if isinstance(node, Field):
        return type_name(node.es_type) if node.es_type else "unknown"
    if isinstance(node, Call):
        definition = FUNCTIONS.get(node.name)
        if definition is None:
            return "unknown"
        names = {"string": "keyword", "numeric": "numeric", "integer": "integer", "boolean": "boolean"}
        return names[definition.returns]
    if isinstance(node, Arith | Neg):
        return "numeric"
    return "boolean"


_STRINGS = KEYWORD_TYPES | TEXT_TYPES | {"version"}
_INTEGER_NAMES = {"long", "integer", "short", "byte", "unsigned_long"}


def _compatible(left: str, right: str) -> bool:
    """QL's ``DataTypes.areCompatible``: equal, null, both strings, both numbers, both dates."""
    if left == right or "null" in (left, right) or "unknown" in (left, right):
        return True
    numbers = _NUMBERS | _INTEGER_NAMES
    return (left in _STRINGS and right in _STRINGS) or (left in numbers and right in numbers)


def _ordinal(number: int) -> str:
    """QL's ``StringUtils.ordinal``: 1st, 2nd, 3rd, 4th, 11th, 21st..."""
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


_NUMBERS = {type_name(t) for t in INTEGER_TYPES | FLOAT_TYPES} | {"numeric"}
_ACCEPTS: dict[str, Callable[[str], bool]] = {
    "string": lambda t: t in _STRINGS,
    "numeric": lambda t: t in _NUMBERS,
    "integer": lambda t: t in {type_name(x) for x in INTEGER_TYPES} | {"numeric"},
    "ip": lambda t: t == "ip",
    "boolean": lambda t: t == "boolean",
    "any": lambda t: True,
}


def is_foldable(node: Expr) -> bool:
    """No field anywhere below (Elasticsearch's ``foldable``: the value is known before any event)."""
    return not any_node(node, lambda current: isinstance(current, Field))


def resolve(expr: Expr, field_types: Mapping[str, str] | FieldTypes, text: str = "") -> Expr:
    """``expr`` with every field resolved; :class:`EqlVerificationError` listing every problem found."""
    fields = field_types if isinstance(field_types, FieldTypes) else FieldTypes(field_types)
    resolver = _Resolver(fields, text)
    resolved = resolver.resolve(expr)
    if resolver.problems:
        raise EqlVerificationError(resolver.problems, text)
    return resolved


def resolve_all(exprs: list[Expr], fields: FieldTypes, text: str) -> list[Expr]:
    """Several expressions of one query, every problem of every one reported together."""
    resolver = _Resolver(fields, text)
    resolved = [resolver.resolve(expr) for expr in exprs]
    if resolver.problems:
        raise EqlVerificationError(resolver.problems, text)
    return resolved
