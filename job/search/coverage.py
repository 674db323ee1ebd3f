"""What the ``_field_caps`` of a rule's index patterns say before it searches: whether any index matches,
and whether the indices map the rule's timestamp (Kibana's two warnings, in its words)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from job.rules.model import Rule
from job.search.clauses import timestamp_fields


def no_index_message(patterns: Sequence[str]) -> str:
    listed = ",".join(f'"{p}"' for p in patterns)
    return (
        'This rule is attempting to query data from Elasticsearch indices listed in the "Index patterns" '
        f"section of the rule definition, however no index matching: [{listed}] was found. This warning will "
        "continue to appear until a matching index is created or this rule is disabled."
    )


def missing_timestamp_message(field_name: str, indices: Sequence[str], override: bool) -> str:
    what = f'timestamp override field "{field_name}"' if override else f'timestamp field "{field_name}"'
    return f"The following indices are missing the {what}: {json.dumps(sorted(indices))}"


def matches_no_index(caps: Mapping[str, Any]) -> bool:
    return not caps.get("indices")


def missing_timestamp_warning(rule: Rule, caps: Mapping[str, Any]) -> str | None:
    """Kibana's warning for indices that do not map the rule's timestamp (none when events lacking the
    override fall back to ``@timestamp``)."""
    fields = timestamp_fields(rule)
    all_indices = caps.get("indices", [])
    entry = caps.get("fields", {}).get(fields.primary)
    if entry is None:
        missing = list(all_indices)
    else:
        missing = list(entry.get("unmapped", {}).get("indices", all_indices if set(entry) == {"unmapped"} else []))
    if missing and fields.fallback is None:
        return missing_timestamp_message(fields.primary, missing, rule.timestamp_override is not None)
    return None


def coverage_warnings(rule: Rule, caps: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """Whether some index matches the rule's patterns, and Kibana's warnings: the one for no index, or the one
    for indices lacking the timestamp."""
    if matches_no_index(caps):
        return False, (no_index_message(rule.index),)
    warning = missing_timestamp_warning(rule, caps)
    return True, (warning,) if warning else ()
