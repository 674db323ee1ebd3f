"""KQL (Kibana Query Language) to Elasticsearch query DSL, selecting what Kibana selects.

``to_dsl(query, fields)`` is Kibana's ``toElasticsearchQuery(fromKueryExpression(query), dataView,
{dateFormatTZ: "Zulu"})`` as the detection engine calls it; ``fields`` (name -> Elasticsearch type) plays
the data view. No Elasticsearch access happens here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from job.kql.ast import Node
from job.kql.dsl import build_dsl
from job.kql.errors import KqlSemanticError, KqlSyntaxError
from job.kql.fields import DataView
from job.kql.lucene import lucene_to_dsl
from job.kql.parser import parse

__all__ = ["KqlSemanticError", "KqlSyntaxError", "Node", "lucene_to_dsl", "parse", "to_dsl"]


def to_dsl(query: str, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Elasticsearch query for a KQL query, as Kibana's detection engine builds it.

    Args:
        query: the KQL text.
        fields: optional field name -> Elasticsearch type (``"keyword"``, ``"date"``, ``"nested"``,
            ``"keyword,text"`` for a conflict); without it every field is unknown, as in a data view
            with no fields.

    Raises:
        KqlSyntaxError: the query does not parse (``line``/``column`` point at the problem).
        KqlSemanticError: a field is used against its nested path (Kibana's nested checks).
    """
    node = parse(query)
    view = DataView(fields) if fields else None
    return build_dsl(node, view, query)
