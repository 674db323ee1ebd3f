"""Lucene-language rules: the clause Kibana's ``buildQueryFromLucene`` + ``decorateQuery`` emit for them.

The detection engine passes ``queryStringOptions: {analyze_wildcard: true}`` and ``dateFormatTZ: "Zulu"``
(``getQueryFilter``), so a Lucene query becomes ``query_string`` with those two settings added; an empty
or blank query becomes ``match_all`` and is not decorated.
"""

from __future__ import annotations

from typing import Any

from job.kql.dsl import DEFAULT_TIME_ZONE
from job.kql.lexer import JS_TRIM


def lucene_to_dsl(query: str, time_zone: str | None = DEFAULT_TIME_ZONE) -> dict[str, Any]:
    """``{"query_string": {"query": q, "analyze_wildcard": true, "time_zone": "Zulu"}}``, or match_all."""
    if not query.strip(JS_TRIM):
        return {"match_all": {}}
    clause: dict[str, Any] = {"query": query, "analyze_wildcard": True}
    if time_zone:
        clause["time_zone"] = time_zone
    return {"query_string": clause}
