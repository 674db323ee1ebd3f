"""EQL's functions (the 8.19 / 9.x list) and its operators, evaluated as Elasticsearch's scripts evaluate them.

Strings are measured and indexed in UTF-16 code units, as Java does (``length("😀")`` is 2). Integer
arithmetic is 64-bit and fails on overflow or division by zero, as Java's exact arithmetic fails; a float
divided by zero is an infinity. A null argument gives null unless a function says otherwise. Values that
cannot be converted (``number("x")``) raise :class:`EqlRuntimeError`: in Elasticsearch the script fails on
the shard holding the event.

The registry (:data:`FUNCTIONS`) also carries what the verifier checks: the number of arguments (with
Elasticsearch's ``expects ...`` wording), each argument's type, which arguments must be constants, whether
the ``~`` form exists, and the result type.
"""

from __future__ import annotations

import dataclasses as dc
import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any

from job.eql.errors import EqlRuntimeError, Problem

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def runtime_error(message: str) -> EqlRuntimeError:
    return EqlRuntimeError(Problem(message))


# -- Java strings --------------------------------------------------------------------------------------


def utf16(text: str) -> str:
    """``text`` with every character outside the BMP written as its two surrogates (Java's code units)."""
    if not _ASTRAL.search(text):
        return text
    out = []
    for char in text:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(chr(0xD800 + (code >> 10)) + chr(0xDC00 + (code & 0x3FF)))
        else:
            out.append(char)
    return "".join(out)


def from_utf16(units: str) -> str:
    """Back from code units (a pair cut in half stays a replacement character)."""
    if not re.search("[\ud800-\udfff]", units):
        return units
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def java_lower(text: str) -> str:
    """``String.toLowerCase(Locale.ROOT)`` (Python's lower agrees on all but a few context-dependent cases)."""
    return text.lower()


def java_double(value: float) -> str:
    """``Double.toString``: ``1.0``, ``0.001``, ``1.0E7``, ``1.5E-4``, ``NaN``, ``Infinity``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = repr(value)  # the shortest digits that read back, as Java's (JDK 19+) algorithm gives
    if 1e-3 <= abs(value) < 1e7:
        return text  # positional in this range, with ".0" when integral
    sign = "-" if value < 0 else ""
    if "e" in text:
        mantissa, exponent = text.lstrip("-").split("e")
        return f"{sign}{mantissa if '.' in mantissa else mantissa + '.0'}E{int(exponent)}"
    whole, fraction = text.lstrip("-").split(".")
    leading_zeros = len(fraction) - len(fraction.lstrip("0"))
    exponent_value = len(whole) - 1 if whole != "0" else -(leading_zeros + 1)
    digits = (whole + fraction).lstrip("0").rstrip("0") or "0"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent_value}"


def java_string(value: Any) -> str:
    """A value as Java's ``String.valueOf`` writes it (booleans in lower case, doubles as ``Double.toString``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    return str(value)


# -- arithmetic ----------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _long(value: int) -> int:
    if not LONG_MIN <= value <= LONG_MAX:
        raise runtime_error("long overflow")
    return value


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """``+ - * / %`` as QL's ``Arithmetics``: exact longs, Java division and remainder, IEEE doubles."""
    if left is None or right is None:
        return None
    if not (_is_number(left) and _is_number(right)):
        raise runtime_error(f"A number is required; received [{java_string(left)}] and [{java_string(right)}]")
    if isinstance(left, int) and isinstance(right, int):
        if op == "+":
            return _long(left + right)
        if op == "-":
            return _long(left - right)
        if op == "*":
            return _long(left * right)
        if right == 0:
            raise runtime_error("/ by zero")
        quotient = abs(left) // abs(right) * (1 if (left >= 0) == (right >= 0) else -1)
        return _long(quotient) if op == "/" else left - right * quotient
    a, b = float(left), float(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    return math.fmod(a, b) if b != 0 else math.nan


def negate(value: Any) -> Any:
    if value is None:
        return None
    if not _is_number(value):
        raise runtime_error(f"A number is required; received [{java_string(value)}]")
    return _long(-value) if isinstance(value, int) else -value


# -- string functions ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise runtime_error(f"A string/char is required; received [{java_string(value)}]")


def fn_length(value: Any) -> Any:
    return None if value is None else len(utf16(_text(value)))


def fn_concat(*values: Any) -> Any:
    if any(value is None for value in values):
        return None
    return "".join(java_string(value) for value in values)


def fn_string(value: Any) -> Any:
    return None if value is None else java_string(value)


def _pair(source: Any, other: Any, insensitive: bool) -> tuple[str, str] | None:
    if source is None or other is None:
        return None
    left, right = _text(source), _text(other)
    return (java_lower(left), java_lower(right)) if insensitive else (left, right)


def fn_starts_with(source: Any, prefix: Any, insensitive: bool = False) -> Any:
    pair = _pair(source, prefix, insensitive)
    return None if pair is None else pair[0].startswith(pair[1])


def fn_ends_with(source: Any, suffix: Any, insensitive: bool = False) -> Any:
    pair = _pair(source, suffix, insensitive)
    return None if pair is None else pair[0].endswith(pair[1])


def fn_string_contains(source: Any, part: Any, insensitive: bool = False) -> Any:
    pair = _pair(source, part, insensitive)
    if pair is None:
        return None
    return bool(pair[0]) and bool(pair[1]) and pair[1] in pair[0]


def fn_index_of(source: Any, part: Any, start: Any = 0, insensitive: bool = False) -> Any:
    pair = _pair(source, part, insensitive)
    if pair is None or start is None:
        return None
    units, wanted = utf16(pair[0]), utf16(pair[1])
    begin = max(0, int(start))
    if begin > len(units):
        return None
    found = units.find(wanted, begin)
    return None if found < 0 else found


def fn_between(source: Any, left: Any, right: Any, greedy: Any = False, insensitive: bool = False) -> Any:
    if source is None or left is None or right is None:
        return None
    original = utf16(_text(source))
    units, opening, closing = original, utf16(_text(left)), utf16(_text(right))
    if insensitive:
        units, opening, closing = java_lower(units), java_lower(opening), java_lower(closing)
    found = units.find(opening)
    if found < 0:
        return ""
    begin = found + len(opening)
    end = units.rfind(closing) if greedy else units.find(closing, begin)
    if end < begin:
        return ""
    return from_utf16(original[begin:end])


def fn_substring(source: Any, start: Any, end: Any = None) -> Any:
    if source is None or start is None:
        return None
    units = utf16(_text(source))
    length = len(units)
    begin = int(start)
    stop = length if end is None else int(end)
    if begin < 0:
        begin = max(0, begin + length)
    if stop < 0:
        stop = max(0, stop + length)
    stop = min(stop, length)
    if begin >= stop:
        return ""
    return from_utf16(units[begin:stop])


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def fn_number(value: Any, base: Any = None) -> Any:
    """``number(s[, base])``: whitespace trimmed, ``0x`` means hex unless another base is given."""
    if value is None:
        return None
    text = _text(value).strip()
    hexadecimal = text.startswith("0x")
    radix = (16 if hexadecimal else 10) if base is None else base
    if isinstance(radix, bool) or not isinstance(radix, int) or not 2 <= radix <= 36:
        raise runtime_error(f"An integer base is required; received [{java_string(base)}]")
    if hexadecimal and radix == 16:
        text = text[2:]
    if radix == 10:
        if re.fullmatch(r"[+-]?\d+", text) and LONG_MIN <= int(text) <= LONG_MAX:
            return int(text)
        if re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[dDfF]?", text):
            return float(text.rstrip("dDfF"))
        if text in ("NaN", "Infinity", "+Infinity", "-Infinity"):
            return float(text.replace("Infinity", "inf"))
    else:
        allowed = _DIGITS[:radix]
        body = text[1:] if text[:1] in "+-" else text
        if body and all(char in allowed for char in body.lower()):
            parsed = int(text, radix)
            if LONG_MIN <= parsed <= LONG_MAX:
                return parsed
    raise runtime_error(f"Unable to convert [{_text(value)}] to number of base [{radix}]")


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise runtime_error(f"Invalid CIDR [{text}]") from None


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise runtime_error(f"'{text}' is not an IP string literal.") from None


def fn_cidr_match(address: Any, *blocks: Any) -> Any:
    if address is None or any(block is None for block in blocks):
        return None
    ip = parse_ip(_text(address))
    return any(ip in parse_cidr(_text(block)) for block in blocks)


# -- the registry --------------------------------------------------------------------------------------

STRING, NUMERIC, INTEGER, BOOLEAN, IP, ANY = "string", "numeric", "integer", "boolean", "ip", "any"


@dc.dataclass(frozen=True, slots=True)
class FunctionDef:
    """What the verifier knows of one function, and its implementation (taking ``insensitive=`` if ``~``)."""

    name: str
    min_args: int
    max_args: int | None
    arity: str
    params: tuple[str, ...]
    constants: tuple[int, ...]
    insensitive: bool
    returns: str
    impl: Callable[..., Any]

    def param(self, index: int) -> str:
        return self.params[min(index, len(self.params) - 1)]


def _arith(op: str) -> Callable[[Any, Any], Any]:
    return lambda left, right: arithmetic(op, left, right)


def _def(
    name: str,
    arity: tuple[int, int | None, str],
    params: str,
    returns: str,
    impl: Callable[..., Any],
    constants: tuple[int, ...] = (),
    insensitive: bool = False,
) -> FunctionDef:
    return FunctionDef(name, arity[0], arity[1], arity[2], tuple(params.split()), constants, insensitive, returns, impl)


_ONE = (1, 1, "expects exactly one argument")
_TWO = (2, 2, "expects exactly two arguments")
FUNCTIONS: dict[str, FunctionDef] = {
    d.name: d
    for d in (
        _def("add", _TWO, "numeric numeric", NUMERIC, _arith("+")),
        _def(
            "between",
            (3, 4, "expects three or four arguments"),
            "string string string boolean",
            STRING,
            fn_between,
            constants=(3,),
            insensitive=True,
        ),
        _def(
            "cidrMatch",
            (2, None, "expects at least two arguments"),
            "ip string",
            BOOLEAN,
            fn_cidr_match,
            constants=tuple(range(1, 1000)),
        ),
        _def("concat", (1, None, "expects at least one argument"), "any", STRING, fn_concat),
        _def("divide", _TWO, "numeric numeric", NUMERIC, _arith("/")),
        _def("endsWith", _TWO, "string string", BOOLEAN, fn_ends_with, insensitive=True),
        _def(
            "indexOf",
            (2, 3, "expects two or three arguments"),
            "string string integer",
            INTEGER,
            fn_index_of,
            insensitive=True,
        ),
        _def("length", _ONE, "string", INTEGER, fn_length),
        _def("modulo", _TWO, "numeric numeric", NUMERIC, _arith("%")),
        _def("multiply", _TWO, "numeric numeric", NUMERIC, _arith("*")),
        _def("number", (1, 2, "expects one or two arguments"), "string integer", NUMERIC, fn_number, constants=(1,)),
        _def("startsWith", _TWO, "string string", BOOLEAN, fn_starts_with, insensitive=True),
        _def("string", _ONE, "any", STRING, fn_string),
        _def("stringContains", _TWO, "string string", BOOLEAN, fn_string_contains, insensitive=True),
        _def("substring", (2, 3, "expects two or three arguments"), "string integer integer", STRING, fn_substring),
        _def("subtract", _TWO, "numeric numeric", NUMERIC, _arith("-")),
    )
}


def call(definition: FunctionDef, args: list[Any], insensitive: bool) -> Any:
    """Apply a function to evaluated arguments."""
    if definition.insensitive:
        return definition.impl(*args, insensitive=insensitive)
    return definition.impl(*args)
