"""The hash Kibana gives suppressed alerts and their groups: npm ``object-hash`` (version 3, default options)
over JSON values, in Python (pure).

Kibana names a suppression group (``kibana.alert.instance.id``) and a suppressed alert (its ``_id``) with
``object-hash``: SHA-1, hex, of a text that spells out each value with its type. This module writes the same
text for the values those ids are made of (lists, string-keyed dicts, strings, numbers, booleans, None and
:class:`JsDate`), so that equal inputs give Kibana's ids; the unit tests check it against Kibana's own vectors.

How the text is made, per value:

* ``None`` is ``Null`` and :data:`UNDEFINED` (JavaScript's ``undefined``) ``Undefined``; a boolean
  ``bool:true``; a number ``number:`` and JavaScript's way of printing it
  (``2``, ``1.5``, ``1e+21``); a string ``string:<length>:<text>``, the length counted in UTF-16 units.
* A list is ``array:<length>:`` followed by its elements.
* A date is ``date:`` and its ISO form with milliseconds (``Date.prototype.toJSON``).
* A dict is ``object:<n>:`` and, for each key, ``<key as a string>:<value>,``. Its keys are sorted in UTF-16
  order and preceded by JavaScript's hidden ``prototype`` (nothing: ``Undefined``), ``__proto__`` (the
  object prototype) and ``constructor`` (the ``Object`` function), so n is the number of keys plus 3.
* Every list, dict and date, and the object prototype and the ``Object`` function the first time they are
  met, take the next place in a list of objects seen; meeting one again writes
  ``[CIRCULAR:<place>]`` as a string instead (which is how the prototype and the function appear in every
  dict after the first).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from job.alerts.timestamps import format_timestamp

MAX_SAFE_INTEGER = 2**53
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class JsDate:
    """A JavaScript ``Date`` (millisecond precision) in a hashed value."""

    moment: datetime

    def to_json(self) -> str:
        return format_timestamp(self.moment)


class _Undefined:
    """JavaScript's ``undefined`` in a hashed value (ES|QL alert ids hash an event's missing ``_version``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


def js_number(value: int | float) -> str:
    """JavaScript's ``String(number)`` for a JSON number (an integer beyond 2**53 as the double JavaScript
    would read it)."""
    number = float(value) if isinstance(value, float) or abs(value) > MAX_SAFE_INTEGER else value
    if isinstance(number, int):
        return str(number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # The shortest digits that read back as this double (Python's repr has them), and the exponent n such
    # that the value is 0.<digits> * 10**n, as ECMAScript's Number::toString defines them.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), len(digits) + int(exponent)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits[0] + (f".{digits[1:]}" if k > 1 else "")
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text


def _utf16_length(text: str) -> int:
    """JavaScript's ``length``: UTF-16 code units (a lone surrogate is one)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def _utf16_key(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.seen: list[object] = []  # the objects met so far, by identity (their place is their index)

    def _first_time(self, token: object) -> bool:
        """Record ``token`` as seen; False (and its ``[CIRCULAR:n]`` written) when it was seen before."""
        for place, seen in enumerate(self.seen):
            if seen is token:
                self.string(f"[CIRCULAR:{place}]")
                return False
        self.seen.append(token)
        return True

    def string(self, text: str) -> None:
        self.parts.append(f"string:{_utf16_length(text)}:{text}")

    def value(self, value: Any) -> None:
        if value is None:
            self.parts.append("Null")
        elif value is UNDEFINED:
            self.parts.append("Undefined")
        elif isinstance(value, bool):
            self.parts.append(f"bool:{'true' if value else 'false'}")
        elif isinstance(value, int | float):
            self.parts.append(f"number:{js_number(value)}")
        elif isinstance(value, str):
            self.string(value)
        elif isinstance(value, JsDate):
            if self._first_time(value):
                self.parts.append(f"date:{value.to_json()}")
        elif isinstance(value, Mapping):
            if self._first_time(value):
                self._object(value)
        elif isinstance(value, Sequence):
            if self._first_time(value):
                self.parts.append(f"array:{len(value)}:")
                for element in value:
                    self.value(element)
        else:
            raise TypeError(f"object-hash of a {type(value).__name__} is not supported")

    def _key(self, key: str) -> None:
        self.string(key)
        self.parts.append(":")

    def _hidden_keys(self, proto: str) -> None:
        """``prototype`` (nothing), ``__proto__`` (``proto``: "object" or "Null") and ``constructor``."""
        self._key("prototype")
        self.parts.append("Undefined,")
        self._key("__proto__")
        if proto == "Null":
            self.parts.append("Null")
        elif self._first_time(_OBJECT_PROTOTYPE):
            self.parts.append("object:3:")
            self._hidden_keys("Null")
        self.parts.append(",")
        self._key("constructor")
        # A native function: its text is "[native]", then its name, then its own (no) enumerable keys.
        self.parts.append("fn:")
        self.string("[native]")
        self.string("function-name:Object")
        if self._first_time(_OBJECT_FUNCTION):
            self.parts.append("object:0:")
        self.parts.append(",")

    def _object(self, value: Mapping[str, Any]) -> None:
        keys = sorted(value, key=_utf16_key)
        self.parts.append(f"object:{len(keys) + 3}:")
        self._hidden_keys("object")
        for key in keys:
            self._key(key)
            self.value(value[key])
            self.parts.append(",")


_OBJECT_PROTOTYPE = object()
_OBJECT_FUNCTION = object()


def serialize(value: Any) -> str:
    """The text object-hash hashes for ``value``."""
    writer = _Writer()
    writer.value(value)
    return "".join(writer.parts)


def object_hash(value: Any) -> str:
    """object-hash's default hash of ``value``: SHA-1 of :func:`serialize`, lowercase hex. Node encodes the
    text as UTF-8 with a lone surrogate as U+FFFD; so do we."""
    text = _LONE_SURROGATE.sub("\ufffd", serialize(value))
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
