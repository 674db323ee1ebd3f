"""Field values of an event's ``_source``, read the way Elasticsearch indexes them for each field type.

:func:`source_values` finds every value of a field path (nested objects, dotted keys such as
``{"process.name": ...}``, arrays of objects, arrays of values), as the ``fields`` API does. The coercions
then turn them into what the index holds: keyword strings (``5`` indexes as ``"5"``, ``true`` as
``"true"``), numbers (``"12"`` into a long is 12, ``5.9`` into a long is 5), dates as nanoseconds since
the epoch (``strict_date_optional_time||epoch_millis``), addresses, booleans (``"true"``, ``"false"``,
``""``). A value the field type cannot hold is dropped, as Elasticsearch would have refused the document
or ignored the value.

Date strings read with Elasticsearch's rounding: a date given to the day covers the whole day, so
``range gt "2024-01-01"`` starts after its last millisecond (``round_up``) and ``gte`` at its first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

KEYWORD_TYPES = frozenset({"keyword", "constant_keyword", "wildcard"})
TEXT_TYPES = frozenset({"text", "match_only_text"})
INTEGER_TYPES = frozenset({"long", "integer", "short", "byte", "unsigned_long"})
FLOAT_TYPES = frozenset({"double", "float", "half_float", "scaled_float"})
DATE_TYPES = frozenset({"date", "date_nanos"})
NUMERIC_TYPES = INTEGER_TYPES | FLOAT_TYPES
SUPPORTED_TYPES = KEYWORD_TYPES | TEXT_TYPES | NUMERIC_TYPES | DATE_TYPES | {"boolean", "ip", "version"}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NS = 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_RE_DATE = re.compile(
    r"(?P<year>[+-]?\d{4,9})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?)?"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?"
)
_RE_EPOCH = re.compile(r"-?\d+(?:\.\d+)?")


class DateMath(ValueError):
    """A date-math expression (``now-1d``): its value depends on the clock, which this package has not."""


def source_values(source: Mapping[str, Any], path: str) -> list[Any]:
    """Every leaf value at ``path`` (arrays flattened, nulls and objects dropped), in source order."""
    found: list[Any] = []
    _collect(source, path, found)
    return found


def _collect(node: Any, path: str, found: list[Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, path, found)
        return
    if not isinstance(node, Mapping):
        return
    if path in node:
        _leaves(node[path], found)
    cut = path.find(".")
    while cut > 0:
        head = path[:cut]
        if head in node:
            _collect(node[head], path[cut + 1 :], found)
        cut = path.find(".", cut + 1)


def _leaves(value: Any, found: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _leaves(item, found)
    elif value is not None and not isinstance(value, Mapping):
        found.append(value)


# -- coercions per field type --------------------------------------------------------------------------


def as_keyword(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return None


def as_integer(value: Any) -> int | None:
    number = as_float(value)
    if number is None or not math.isfinite(number):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return int(number)  # coerce: a fraction is truncated toward zero


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", "false", ""):
        return bool(value == "true")
    return None


def as_ip(value: Any) -> IpAddress | None:
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def ip_sort_key(address: IpAddress) -> int:
    """Elasticsearch's order of addresses: IPv4 as IPv4-mapped IPv6, compared as 16 bytes."""
    if isinstance(address, ipaddress.IPv4Address):
        return int(ipaddress.IPv6Address(f"::ffff:{address}"))
    return int(address)


def parse_date(text: str, round_up: bool = False) -> int:
    """A date string as nanoseconds since the epoch; ``round_up`` fills the fields not given with their
    maximum, as Elasticsearch's date math does for ``gt``/``lte`` bounds. Raises ValueError if unreadable."""
    stripped = text.strip()
    if stripped.startswith("now") or "||" in stripped:
        raise DateMath(f"date math [{text}] depends on the clock and is not evaluated here")
    if _RE_EPOCH.fullmatch(stripped) and not re.fullmatch(r"\d{4}", stripped):
        return epoch_millis_to_ns(float(stripped) if "." in stripped else int(stripped))
    match = _RE_DATE.fullmatch(stripped)
    if match is None:
        raise ValueError(f"failed to parse date field [{text}] with format [strict_date_optional_time||epoch_millis]")
    parts = match.groupdict()
    year = int(parts["year"])
    month = int(parts["month"] or (12 if round_up else 1))
    if parts["day"] is None and round_up:
        next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
        day = (next_month - dt.timedelta(days=1)).day
    else:
        day = int(parts["day"] or 1)
    hour = int(parts["hour"] or (23 if round_up else 0))
    minute = int(parts["minute"] or (59 if round_up and parts["minute"] is None else 0))
    second = int(parts["second"] or (59 if round_up and parts["second"] is None else 0))
    fraction = parts["fraction"]
    if fraction is None:
        nanos = 999_999_999 if round_up else 0
    elif round_up and len(fraction) < 3:
        nanos = int(fraction.ljust(3, "0")) * 1_000_000 + 999_999
    elif round_up and len(fraction) == 3:
        nanos = int(fraction) * 1_000_000 + 999_999
    else:
        nanos = int(fraction.ljust(9, "0"))
    zone = parts["zone"]
    offset = dt.timedelta(0)
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        offset = -offset if zone[0] == "-" else offset
    moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone(offset))
    seconds = (moment - _EPOCH) // dt.timedelta(seconds=1)
    return seconds * _NS + nanos


def epoch_millis_to_ns(millis: float) -> int:
    return int(millis * 1_000_000) if isinstance(millis, float) else millis * 1_000_000


def as_date(value: Any) -> int | None:
    """An indexed date (nanoseconds since the epoch), from a date string or epoch milliseconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return epoch_millis_to_ns(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return parse_date(value)
        except (ValueError, OverflowError):
            return None
    return None


def indexed(value: Any, es_type: str | None) -> Any:
    """``value`` as the index holds it for ``es_type`` (None: it cannot be held, or no known type)."""
    if es_type is None or es_type in KEYWORD_TYPES or es_type in TEXT_TYPES or es_type == "version":
        return as_keyword(value)
    if es_type in INTEGER_TYPES:
        return as_integer(value)
    if es_type in FLOAT_TYPES:
        return as_float(value)
    if es_type in DATE_TYPES:
        return as_date(value)
    if es_type == "boolean":
        return as_boolean(value)
    if es_type == "ip":
        return as_ip(value)
    return None


def indexed_values(source: Mapping[str, Any], path: str, es_type: str | None) -> list[Any]:
    """The values of ``path`` the index holds for ``es_type``, in source order (unholdable ones dropped)."""
    values = []
    for value in source_values(source, path):
        held = indexed(value, es_type)
        if held is not None:
            values.append(held)
    return values


def script_value(held: Any, es_type: str | None) -> Any:
    """An indexed value as a script reads it from doc values (addresses as their text, dates as datetimes)."""
    if es_type == "ip" and held is not None:
        return str(held)
    if es_type in DATE_TYPES and isinstance(held, int):
        return _EPOCH + dt.timedelta(microseconds=held // 1000)
    return held


def doc_values(source: Mapping[str, Any], path: str, es_type: str | None) -> Iterator[Any]:
    """The values a script iterates for a field (missing field: none)."""
    for held in indexed_values(source, path, es_type):
        yield script_value(held, es_type)
