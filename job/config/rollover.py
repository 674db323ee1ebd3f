"""``DETECTION_ALERTS_ROLLOVER``: the conditions of the ``_rollover`` API, written ``max_age=30d,max_docs=1000000``.

Parsed and checked here (no Elasticsearch involved) so a typo stops the job at start with one line
instead of a 400 from the cluster at every pass.
"""

from __future__ import annotations

import re

RolloverConditions = tuple[tuple[str, str | int], ...]

DEFAULT_ROLLOVER: RolloverConditions = (("max_age", "30d"), ("max_primary_shard_size", "50gb"))
# The execution log rolls over weekly, so that its retention (30 days by default) deletes a week at a time.
DEFAULT_EXECUTIONS_ROLLOVER: RolloverConditions = (("max_age", "7d"), ("max_primary_shard_size", "50gb"))
DISABLED = frozenset({"off", "none", "never"})

_AGE = re.compile(r"^([0-9]+)(nanos|micros|ms|s|m|h|d)$")
_SIZE = re.compile(r"^([0-9]+)(b|kb|mb|gb|tb|pb)$")
_COUNT = re.compile(r"^[0-9]+$")

# condition -> the kind of its value; the _rollover API's names (Elasticsearch 8.4 and later).
CONDITIONS: dict[str, str] = {
    **{f"{bound}_age": "age" for bound in ("max", "min")},
    **{f"{bound}_{what}": "size" for bound in ("max", "min") for what in ("size", "primary_shard_size")},
    **{f"{bound}_{what}": "count" for bound in ("max", "min") for what in ("docs", "primary_shard_docs")},
}
_EXAMPLES = {"age": "30d, 12h or 90m", "size": "50gb or 500mb", "count": "a whole number, e.g. 1000000"}


def _value(name: str, text: str) -> str | int:
    kind = CONDITIONS[name]
    pattern = {"age": _AGE, "size": _SIZE, "count": _COUNT}[kind]
    match = pattern.match(text.lower())
    if match is None or int(match.group(1) if kind != "count" else match.group()) == 0:
        raise ValueError(f"{name}={text!r}: expected a positive {kind} ({_EXAMPLES[kind]})")
    return int(text) if kind == "count" else text.lower()


def parse_rollover(text: str) -> RolloverConditions:
    """``max_age=30d,max_primary_shard_size=50gb`` -> the conditions; ``off`` -> none (never roll over).

    Raises ``ValueError`` naming the first bad part.
    """
    if text.strip().lower() in DISABLED:
        return ()
    conditions: dict[str, str | int] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, equals, value = (item.strip() for item in part.partition("="))
        name = name.lower()
        if not equals or not value:
            raise ValueError(f"{part!r}: expected name=value (e.g. max_age=30d)")
        if name not in CONDITIONS:
            raise ValueError(f"unknown condition {name!r}: expected one of {', '.join(sorted(CONDITIONS))}")
        if name in conditions:
            raise ValueError(f"condition {name!r} is given twice")
        conditions[name] = _value(name, value)
    if not conditions:
        raise ValueError("expected conditions such as max_age=30d,max_primary_shard_size=50gb (or off)")
    if not any(name.startswith("max_") for name in conditions):
        raise ValueError("at least one max_* condition is needed; min_* conditions only restrict them")
    return tuple(conditions.items())
