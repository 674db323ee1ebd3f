"""The floor: the least work any implementation of a rule run must do on the same node, as a process of
its own (the job's measurement is a process too).

It opens a point in time on the events index, pages the job's own query with ``search_after`` (sort
``@timestamp`` + ``_shard_doc``, 1,000 a page) and bulk-creates one document per hit with
``elasticsearch.helpers.bulk``:

* ``--docs same-size:BYTES``: a document of that many bytes (the job's mean alert size);
* ``--docs file:PATH``: the job's own alert document for that event, taken from a job run beforehand
  (``PATH`` holds ``event id<TAB>alert JSON`` lines), written into an alias made from the job's alert
  template.

Imports nothing of the job. Prints the number of documents created.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from elasticsearch import Elasticsearch, helpers

PAGE = 1000


def _documents(spec: str) -> Any:
    kind, _, value = spec.partition(":")
    if kind == "same-size":
        size = int(value)

        def same_size(hit: dict[str, Any]) -> Any:
            # The hit's id and time plus padding up to the size of an alert.
            head = {"@timestamp": hit["_source"].get("@timestamp"), "event_id": hit["_id"]}
            pad = size - len(json.dumps(head)) - 10
            return {**head, "pad": "x" * max(pad, 0)}

        return same_size
    with open(value, encoding="utf-8") as lines:
        by_event = dict(line.rstrip("\n").split("\t", 1) for line in lines)

    def job_document(hit: dict[str, Any]) -> Any:
        return by_event[hit["_id"]]  # pre-serialized: the client sends the text as it is

    return job_document


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--es", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--query", required=True, help="the job's query (JSON)")
    parser.add_argument("--target", required=True)
    parser.add_argument("--docs", required=True)
    args = parser.parse_args(argv)
    document = _documents(args.docs)
    query = json.loads(args.query)
    es = Elasticsearch(args.es, request_timeout=300)
    pit = es.open_point_in_time(index=args.events, keep_alive="5m")["id"]
    after: list[Any] | None = None
    created = 0
    while True:
        response = es.search(
            pit={"id": pit, "keep_alive": "5m"},
            query=query,
            sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
            size=PAGE,
            search_after=after,
            track_total_hits=False,
        )
        pit = response["pit_id"]
        hits = response["hits"]["hits"]
        if not hits:
            break
        actions = (
            {"_op_type": "create", "_index": args.target, "_id": hit["_id"], "_source": document(hit)} for hit in hits
        )
        ok, _ = helpers.bulk(es, actions, chunk_size=PAGE, max_chunk_bytes=100 * 2**20)
        created += ok
        after = hits[-1]["sort"]
    es.close_point_in_time(id=pit)
    print(created)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
