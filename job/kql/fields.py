"""The data view: what Kibana knows about the fields when it translates KQL.

Built from a plain mapping ``field name -> Elasticsearch type`` (``"keyword"``, ``"date"``, ...). A
field whose type differs between indices is given as ``"keyword,text"``. Nested objects appear under
their own path with type ``"nested"``; like Kibana's data view, object and nested entries are not
fields themselves, they only tell which fields sit under a nested path.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Mapping
from functools import cached_property

_DATE_TYPES = frozenset({"date", "date_nanos"})


@dc.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field as Kibana's ``DataViewFieldBase`` sees it."""

    name: str
    es_types: tuple[str, ...] = ()
    nested_path: str | None = None

    @property
    def is_keyword(self) -> bool:
        """Kibana's test: ``esTypes`` is exactly ``["keyword"]``."""
        return self.es_types == ("keyword",)

    @property
    def is_date(self) -> bool:
        """Kibana field type ``date``: every ES type is ``date`` or ``date_nanos`` (no conflict)."""
        return bool(self.es_types) and _DATE_TYPES.issuperset(self.es_types)


def _types(spec: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for part in spec.split(","):
        if part.strip():
            seen[part.strip()] = None
    return tuple(seen)


def _utf16_key(name: str) -> bytes:
    # Kibana sorts field names as JavaScript strings, by UTF-16 code units.
    return name.encode("utf-16-be", "surrogatepass")


def glob_match(parts: tuple[str, ...], name: str) -> bool:
    """Whether ``name`` matches the literal ``parts`` joined by ``*`` (``*`` matching any text, even empty).

    Without backtracking: the first part must start the name and the last end it; each part between is
    taken at its leftmost place after the previous one. Taking the leftmost place never loses a match,
    since what follows only has to fit in what is left, and the earliest end leaves the most. So the time
    is linear in the name and the pattern, where a regex ``a.*a.*a...b`` is exponential.
    """
    if len(parts) == 1:
        return name == parts[0]
    first, last = parts[0], parts[-1]
    if len(name) < len(first) + len(last) or not name.startswith(first) or not name.endswith(last):
        return False
    position, end = len(first), len(name) - len(last)
    for part in parts[1:-1]:
        found = name.find(part, position, end)
        if found == -1:
            return False
        position = found + len(part)
    return True


class DataView:
    """Field lookups for one translation; cheap to build, work is done on demand."""

    def __init__(self, types: Mapping[str, str]) -> None:
        for name, spec in types.items():
            if not isinstance(name, str) or not isinstance(spec, str):
                raise TypeError(f"field types map names to type strings, got {name!r}: {spec!r}")
        self._types = types
        self._specs: dict[str, FieldSpec | None] = {}

    def _is_container(self, name: str, kind: str) -> bool:
        spec = self._types.get(name)
        return spec is not None and _types(spec) == (kind,)

    def _spec(self, name: str) -> FieldSpec | None:
        spec = self._types.get(name)
        if spec is None:
            return None
        types = _types(spec)
        if types in (("nested",), ("object",)):
            return None
        return FieldSpec(name, types, self._nested_path(name))

    def _nested_path(self, name: str) -> str | None:
        """The closest enclosing path of type nested, as Kibana's ``subType.nested.path``."""
        cut = name.rfind(".")
        while cut > 0:
            parent = name[:cut]
            if self._is_container(parent, "nested"):
                return parent
            cut = name.rfind(".", 0, cut)
        return None

    @cached_property
    def _sorted_names(self) -> list[str]:
        return sorted(self._types, key=_utf16_key)

    def get(self, name: str) -> FieldSpec | None:
        """The field with exactly this name, or None (unknown, or an object/nested path)."""
        if name not in self._specs:
            self._specs[name] = self._spec(name)
        return self._specs[name]

    def matching(self, parts: tuple[str, ...]) -> list[FieldSpec]:
        """Fields whose names match the wildcard pattern (``*`` matches anything), in data-view order."""
        found = []
        for name in self._sorted_names:
            if glob_match(parts, name):
                spec = self.get(name)
                if spec is not None:
                    found.append(spec)
        return found
