"""What one pushed-down query leaf selects, decided on the client from the EQL predicate it came from.

The decision follows the query Elasticsearch builds (a ``term`` on a date is the day's range, on an ip a
CIDR is a network, a ``range`` on a keyword compares UTF-8 bytes, ``wildcard`` and ``prefix`` with
``case_insensitive`` fold each character both ways), but it is computed from the EQL predicate, not by
reading the generated DSL back: so comparing it with what the node returns for the DSL catches a wrong
translation. Two-valued: true when some indexed value satisfies the leaf, false for a missing field.

The wildcard matcher and Lucene's case folding live here too: ``*`` any run, ``?`` one character, ``\\``
escapes the next (greedy with one saved star, no backtracking); with ``case_insensitive`` each pattern
character also matches its other case (``Character.toUpperCase``/``toLowerCase``, one character to one),
as Lucene's automata for ``term``, ``prefix`` and ``wildcard`` do; the scripts' ``like~`` folds ASCII only.

:func:`check_literal` refuses a constant the field type cannot take (``process.pid == "abc"``), where
Elasticsearch fails the whole search when it builds the query.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from job.eql.ast import Call, Compare, Expr, Field, In, InsensitiveEq, IsNotNull, IsNull, Like, Literal, Range, Regex
from job.eql.errors import EqlRuntimeError, Problem
from job.eql.regexp import compile_regex
from job.eql.values import (
    DATE_TYPES,
    FLOAT_TYPES,
    INTEGER_TYPES,
    TEXT_TYPES,
    DateMath,
    as_boolean,
    as_float,
    as_ip,
    as_keyword,
    indexed_values,
    ip_sort_key,
    parse_date,
)

_NUMERIC = INTEGER_TYPES | FLOAT_TYPES


# -- wildcards and case folding ------------------------------------------------------------------------

_JAVA_LINE_TERMINATORS = frozenset("\n\r\u0085\u2028\u2029")


def other_case(char: str) -> str:
    """The character Lucene's case-insensitive automata also accept for ``char``."""
    alt = char.upper() if char.islower() else char.lower()
    return alt if len(alt) == 1 else char


def ci_char_equal(text_char: str, pattern_char: str) -> bool:
    return text_char == pattern_char or text_char == other_case(pattern_char)


def ci_equal(text: str, pattern: str) -> bool:
    """``term`` with ``case_insensitive``: same length, each character equal or the pattern's other case."""
    return len(text) == len(pattern) and all(map(ci_char_equal, text, pattern))


def ci_prefix(text: str, prefix: str) -> bool:
    return len(text) >= len(prefix) and all(map(ci_char_equal, text, prefix))


def _ascii_fold(char: str) -> str:
    return char.lower() if char.isascii() else char


# -- wildcards -----------------------------------------------------------------------------------------

_STAR, _ONE = object(), object()


@lru_cache(maxsize=4096)
def _wildcard_units(pattern: str) -> tuple[object, ...]:
    units: list[object] = []
    escaped = False
    for char in pattern:
        if escaped:
            units.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            if not units or units[-1] is not _STAR:
                units.append(_STAR)
        elif char == "?":
            units.append(_ONE)
        else:
            units.append(char)
    if escaped:  # a trailing backslash is a literal one, as Lucene's WildcardQuery reads it
        units.append("\\")
    return tuple(units)


def wildcard_match(
    pattern: str, text: str, *, insensitive: bool = False, ascii_only: bool = False, any_newline: bool = True
) -> bool:
    """Whether ``text`` matches a Lucene wildcard ``pattern`` (greedy with one saved star: O(len * len)).

    ``insensitive`` compares each literal with Lucene's other-case rule, or with ASCII folding when
    ``ascii_only`` (Java's ``CASE_INSENSITIVE`` in scripts); ``any_newline=False`` keeps ``*``/``?`` off
    Java's line terminators, as the scripts' regular expressions do.
    """
    units = _wildcard_units(pattern)
    same: Callable[[str, str], bool]
    if not insensitive:
        same = str.__eq__
    elif ascii_only:
        same = lambda t, p: _ascii_fold(t) == _ascii_fold(p)  # noqa: E731
    else:
        same = ci_char_equal
    t = u = 0
    star_u, star_t = -1, -1
    while t < len(text):
        char = text[t]
        unit = units[u] if u < len(units) else None
        if unit is _STAR:
            star_u, star_t = u, t
            u += 1
            continue
        if unit is _ONE and (any_newline or char not in _JAVA_LINE_TERMINATORS):
            t, u = t + 1, u + 1
            continue
        if isinstance(unit, str) and same(char, unit):
            t, u = t + 1, u + 1
            continue
        if star_u >= 0 and (any_newline or text[star_t] not in _JAVA_LINE_TERMINATORS):
            star_t += 1
            t, u = star_t, star_u + 1
            continue
        return False
    return all(unit is _STAR for unit in units[u:])


def like_to_wildcard(pattern: str) -> str:
    """An EQL ``like`` pattern as the Lucene wildcard Elasticsearch sends (a backslash becomes ``\\\\``)."""
    return pattern.replace("\\", "\\\\")


def wildcard_is_total(pattern: str) -> bool:
    """The pattern matches every string (only stars): Elasticsearch turns it into ``exists``."""
    return bool(pattern) and set(pattern) == {"*"}


def like_exact(pattern: str) -> str | None:
    """The one string an EQL ``like`` pattern matches, when it has no ``*`` or ``?`` (else None)."""
    return None if "*" in pattern or "?" in pattern else pattern


# -- literals and leaves --------------------------------------------------------------------------------


def check_literal(es_type: str | None, value: Any, range_query: bool) -> str | None:
    """Why Elasticsearch cannot build a query comparing a field of ``es_type`` with ``value`` (None: it can)."""
    if value is None:
        return None
    if es_type in _NUMERIC:
        if isinstance(value, bool) or (isinstance(value, str) and as_float(value) is None):
            return f'failed to create query: For input string: "{value}"'
    elif es_type in DATE_TYPES:
        if isinstance(value, bool):
            return f"failed to parse date field [{value}] with format [strict_date_optional_time||epoch_millis]"
        if isinstance(value, str):
            try:
                parse_date(value)
            except DateMath:
                return None
            except (ValueError, OverflowError) as exc:
                return str(exc)
    elif es_type == "ip":
        text = value if isinstance(value, str) else str(value)
        if as_ip(text) is None and (range_query or "/" not in text or _network(text) is None):
            return f"'{text}' is not an IP string literal."
    elif es_type == "boolean" and not isinstance(value, bool) and value not in ("true", "false", ""):
        return f"Can't parse boolean value [{value}], expected [true] or [false]"
    return None


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _date_bound(value: Any, round_up: bool) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1_000_000)
    try:
        return parse_date(str(value), round_up)
    except DateMath as exc:
        raise EqlRuntimeError(Problem(str(exc))) from None


def term_matches(held: Any, value: Any, es_type: str | None) -> bool:
    """Whether one indexed value is selected by a ``term`` query for ``value``."""
    if es_type in _NUMERIC:
        number = as_float(value)
        return number is not None and float(held) == number
    if es_type in DATE_TYPES:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return bool(held == int(value * 1_000_000))
        return bool(_date_bound(value, False) <= held <= _date_bound(value, True))
    if es_type == "ip":
        text = str(value)
        network = _network(text) if "/" in text else None
        if network is not None:
            return held.version == network.version and held in network
        return bool(held == as_ip(text))
    if es_type == "boolean":
        return bool(held == as_boolean(value))
    return bool(held == as_keyword(value))


def range_matches(held: Any, op: str, value: Any, es_type: str | None) -> bool:
    """Whether one indexed value is selected by ``range: {op: value}`` (a null bound is no bound)."""
    if value is None:
        return True
    if es_type in _NUMERIC:
        bound: Any = as_float(value)
        if bound is None:
            return False
        left: Any = float(held)
    elif es_type in DATE_TYPES:
        bound, left = _date_bound(value, op in ("gt", "lte")), held
    elif es_type == "ip":
        address = as_ip(str(value))
        if address is None:
            return False
        bound, left = ip_sort_key(address), ip_sort_key(held)
    elif es_type == "boolean":
        bound, left = as_boolean(value), held
        if bound is None:
            return False
    else:
        keyword = as_keyword(value)
        if keyword is None:
            return False
        bound, left = keyword.encode("utf-8", "surrogatepass"), held.encode("utf-8", "surrogatepass")
    return bool({"gt": left > bound, "gte": left >= bound, "lt": left < bound, "lte": left <= bound}[op])


_OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_TOKEN = re.compile(r"\w+")


def _values(field: Field, source: Mapping[str, Any], analyzed: bool = False) -> list[Any]:
    values = indexed_values(source, field.name, field.es_type)
    if analyzed and field.es_type in TEXT_TYPES:  # a range on a text field compares its tokens
        return [token for value in values for token in _TOKEN.findall(value.lower())]
    return values


def leaf_matches(node: Expr, source: Mapping[str, Any]) -> bool:
    """Whether the query Elasticsearch builds for this predicate selects the event."""
    if isinstance(node, Compare):
        field, value = node.left, node.right
        assert isinstance(field, Field) and isinstance(value, Literal)
        if node.op in ("==", "!="):
            found = any(term_matches(held, value.value, field.es_type) for held in _values(field, source))
            return found if node.op == "==" else not found
        return any(
            range_matches(held, _OPS[node.op], value.value, field.es_type) for held in _values(field, source, True)
        )
    if isinstance(node, Range):
        field = node.value
        assert isinstance(field, Field) and isinstance(node.lower, Literal) and isinstance(node.upper, Literal)
        low_op, high_op = ("gte" if node.lower_inclusive else "gt"), ("lte" if node.upper_inclusive else "lt")
        return any(
            range_matches(held, low_op, node.lower.value, field.es_type)
            and range_matches(held, high_op, node.upper.value, field.es_type)
            for held in _values(field, source, True)
        )
    if isinstance(node, InsensitiveEq):
        field, value = node.left, node.right
        assert isinstance(field, Field) and isinstance(value, Literal)
        pattern = as_keyword(value.value) or ""
        found = any(ci_equal(held, pattern) for held in _values(field, source))
        return not found if node.negated else found
    if isinstance(node, IsNull | IsNotNull):
        assert isinstance(node.operand, Field)
        present = bool(_values(node.operand, source))
        return present if isinstance(node, IsNotNull) else not present
    if isinstance(node, Like):
        assert isinstance(node.value, Field)
        wildcard = like_to_wildcard(node.pattern)
        return any(wildcard_match(wildcard, held, insensitive=node.insensitive) for held in _values(node.value, source))
    if isinstance(node, Regex):
        assert isinstance(node.value, Field)
        regex = compile_regex(node.pattern, node.insensitive)
        return any(regex.matches(held) for held in _values(node.value, source))
    if isinstance(node, In):
        assert isinstance(node.value, Field)
        items = [item.value for item in node.items if isinstance(item, Literal) and item.value is not None]
        held_values = _values(node.value, source)
        return any(term_matches(held, item, node.value.es_type) for held in held_values for item in items)
    if isinstance(node, Call):
        return _function_matches(node, source)
    if isinstance(node, Field):
        return any(held is True for held in _values(node, source))
    raise ValueError(f"not a query leaf: {type(node).__name__}")


def _function_matches(node: Call, source: Mapping[str, Any]) -> bool:
    field = node.args[0]
    assert isinstance(field, Field)
    constants = [arg.value for arg in node.args[1:] if isinstance(arg, Literal)]
    held_values = _values(field, source)
    if node.name == "cidrMatch":
        return any(term_matches(held, block, "ip") for held in held_values for block in constants)
    constant = str(constants[0])
    if node.name == "startsWith":
        if node.insensitive:
            return any(ci_prefix(held, constant) for held in held_values)
        return any(held.startswith(constant) for held in held_values)
    # endsWith/stringContains: the constant between stars, unescaped, as Elasticsearch builds the wildcard
    wildcard = f"*{constant}" if node.name == "endsWith" else f"*{constant}*"
    return any(wildcard_match(wildcard, held, insensitive=node.insensitive) for held in held_values)
