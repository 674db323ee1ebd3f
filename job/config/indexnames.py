"""Elasticsearch's rules for index and alias names, checked before anything is sent.

A name breaking them is refused by Elasticsearch with an HTTP 400 at setup or on every write; checked
at start, the job stops with one line naming the setting instead. The rules (``MetadataCreateIndexService``):
lowercase; none of ``\\ / * ? " < > | , # :`` nor a space; not starting with ``-``, ``_`` or ``+``; not
``.`` or ``..``; at most 255 bytes of UTF-8. We also refuse control characters, which no tool shows.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

MAX_NAME_BYTES = 255
_FORBIDDEN = '\\/*?"<>|,#: '


def index_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an Elasticsearch index or alias name, or None."""
    if not name:
        return "an index name cannot be empty"
    if name in (".", ".."):
        return "an index name cannot be '.' or '..'"
    if name[0] in "-_+":
        return f"an index name cannot start with {name[0]!r}"
    bad = sorted({char for char in name if char in _FORBIDDEN})
    if bad:
        return "an index name cannot contain " + ", ".join(repr(char) for char in bad)
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in name):
        return "an index name cannot contain control characters"
    if name.lower() != name:
        return "an index name must be lowercase"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"an index name is at most {MAX_NAME_BYTES} bytes (this one is {size})"
    return None


def alias_name_problem(alias: str) -> str | None:
    """``index_name_problem`` for an alert alias and for the names derived from it (its indices and template)."""
    problem = index_name_problem(alias)
    if problem is not None:
        return problem
    for derived in (write_index_name(alias), template_name(alias)):
        size = len(derived.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            return f"too long: the derived name {derived[-16:]!r} would be {size} bytes, over {MAX_NAME_BYTES}"
    return None


def _check(problem: str | None) -> None:
    if problem is not None:
        raise ValueError(problem)


def _index_name(name: str) -> str:
    _check(index_name_problem(name))
    return name


def _alias_name(name: str) -> str:
    _check(alias_name_problem(name))
    return name


# Setting types: ``dead_letter_index: IndexName = "detection-deadletter-default"``.
IndexName = Annotated[str, AfterValidator(_index_name)]
AliasName = Annotated[str, AfterValidator(_alias_name)]


def template_name(alias: str) -> str:
    """The name the alert index template of ``alias`` is installed under."""
    return f"{alias}-template"


def write_index_name(alias: str) -> str:
    """The first concrete index behind the rollover alias ``alias``."""
    return f"{alias}-000001"
