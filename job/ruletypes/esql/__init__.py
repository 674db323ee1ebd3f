"""The ES|QL rule type: Kibana's ES|QL rules (8.19's executor) on Elasticsearch's ``_query`` API.

One page of a run:

1. :func:`request.build_request` (query text, window, timestamp fields, exception clause, page size, excluded
   events) gives the ``_query`` call; :mod:`excluded` keeps the events already alerted on across pages and runs.
2. :class:`engine.Engine` sends it within the run's deadline and :func:`response.parse_response` reads the
   answer (columns, rows without null cells, partial results).
3. For a non-aggregating query the engine fetches the rows' events (:func:`request.source_fetch_body`,
   :func:`sources.fetched_events`).
4. :func:`alerts.rows_to_alerts` gives the would-be alerts: Kibana's id and the event merged with the row.

:mod:`execute` is Kibana's paging loop through the shared writer (:mod:`maker`: the alert), :mod:`suppressed`
the same with alert suppression, :mod:`compiled` the query as read before Elasticsearch sees it and the
search of a window, :mod:`rule_type` the type (``TYPES["esql"]``). What the job reads of the query text itself
is the language package :mod:`job.esql` (the pipeline's commands, 9.4's ``METADATA _id`` rewrite).

Modules: compiled, engine (I/O), request, response, sources, excluded, merge (columns into the event's
source), alerts (ids and would-be alerts), maker, execute (I/O), suppressed (I/O), errors (Kibana's texts),
rule_type.
"""
