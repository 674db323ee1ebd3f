"""ES|QL rules as Kibana's detection engine runs them (8.19 and 9.x): the pure parts.

The query runs on Elasticsearch's ``_query`` API; nothing here talks to Elasticsearch. One page of a run:

1. :func:`request.build_request` (query text, window, timestamp fields, exception clause, page size, excluded
   events) gives the ``_query`` call; :mod:`excluded` keeps the events already alerted on across pages and runs.
2. :func:`response.parse_response` reads the answer (columns, rows without null cells, partial results).
3. For a non-aggregating query, :func:`request.source_fetch_body` fetches the rows' events and
   :func:`sources.fetched_events` reads them.
4. :func:`alerts.rows_to_alerts` gives the would-be alerts: Kibana's id and the event merged with the row.

Before the first page, :func:`inject.query_to_run` gives the query sent (8.19 and 9.0-9.3: as saved; 9.4+:
``METADATA _id`` injected), and :func:`inject.metadata_id_problem` is Kibana's save-time check (before 9.4 a
non-aggregating query must name ``_id`` in ``METADATA``).

Modules: text (the pipeline's commands: aggregating or not, FROM's indices and METADATA, MV_EXPAND),
inject (METADATA _id: required before 9.4, injected from 9.4), request, response, sources, excluded,
merge (columns into the event's source), alerts (ids and would-be alerts), errors (Kibana's texts).
"""
