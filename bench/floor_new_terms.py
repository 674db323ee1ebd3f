"""The floor of a new-terms rule: the same three aggregations the rule's run sends, issued directly, as a process
of its own (the job's measurement is a process too).

Per page of 10,000 terms of the window (a ``composite`` aggregation on the field): when each was first seen in
the history window (a ``terms`` aggregation with ``include`` of the page's terms and a ``min`` of the
timestamp), and the earliest event of each term first seen after the window's start (``top_hits``). It writes
nothing and keeps no record: the least any implementation must ask of Elasticsearch for one window.

Imports nothing of the job. Prints the number of new terms.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

PAGE = 10_000


def _range(start: str, end: str) -> dict[str, Any]:
    return {"range": {"@timestamp": {"gte": start, "lte": end, "format": "strict_date_optional_time"}}}


def _query(query: dict[str, Any], start: str, end: str) -> dict[str, Any]:
    return {"bool": {"filter": [query, _range(start, end)]}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--es", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--field", required=True)
    parser.add_argument("--from", dest="start", required=True, help="the window's start (ISO)")
    parser.add_argument("--to", dest="end", required=True, help="the window's end (ISO)")
    parser.add_argument("--history", required=True, help="the history window's start (ISO)")
    args = parser.parse_args(argv)
    es = Elasticsearch(args.es, request_timeout=300)
    rule_query = {"match": {"event.category": "authentication"}}
    window, history = _query(rule_query, args.start, args.end), _query(rule_query, args.history, args.end)
    window_start = datetime.fromisoformat(args.start.replace("Z", "+00:00")).timestamp() * 1000
    after: dict[str, Any] | None = None
    new_terms = 0
    while True:
        composite: dict[str, Any] = {"sources": [{args.field: {"terms": {"field": args.field}}}], "size": PAGE}
        if after is not None:
            composite["after"] = after
        page = es.search(index=args.events, size=0, query=window, aggs={"new_terms": {"composite": composite}})
        aggregation = page["aggregations"]["new_terms"]
        values = [bucket["key"][args.field] for bucket in aggregation["buckets"]]
        if not values:
            break
        terms = {"field": args.field, "include": values, "size": len(values)}
        first = {"min": {"field": "@timestamp"}}
        aggs = {"new_terms": {"terms": terms, "aggs": {"first": first}}}
        seen = es.search(index=args.events, size=0, query=history, aggs=aggs)
        buckets = seen["aggregations"]["new_terms"]["buckets"]
        new = [bucket["key"] for bucket in buckets if bucket["first"]["value"] > window_start]
        if new:
            top = {"top_hits": {"size": 1, "sort": [{"@timestamp": {"order": "asc"}}]}}
            events = {"terms": {"field": args.field, "include": new, "size": len(new)}, "aggs": {"first_event": top}}
            found = es.search(index=args.events, size=0, query=window, aggs={"new_terms": events})
            new_terms += len(found["aggregations"]["new_terms"]["buckets"])
        if len(values) < PAGE or "after_key" not in aggregation:
            break
        after = aggregation["after_key"]
    print(new_terms)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
