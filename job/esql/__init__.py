"""The ES|QL language, as far as this job reads it without Elasticsearch (pure): the pipeline's top-level
commands (``text``), and the ``METADATA _id`` rewrite Kibana 9.4+ runs before a query (``inject``).
Elasticsearch parses and runs the query itself (``job.ruletypes.esql``)."""
