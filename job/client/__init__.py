"""The Elasticsearch client: how it is made, its errors in one line, the retries of transient errors, and
the field types of index patterns."""
