"""Value lists: Kibana's lists of values (keywords, IPs, IP ranges, ...) that exception entries of type
``list`` refer to.

The lists live in Elasticsearch, in Kibana's document shape, in two indices (``DETECTION_LISTS_INDEX``,
``DETECTION_LIST_ITEMS_INDEX``); point them at Kibana's ``.lists-<space>`` / ``.items-<space>`` to use the
lists made in Kibana.

Pure: ``model`` (limits and records), ``parse`` (one line of an import file into an item value, and an item
back into its text), ``documents`` (Kibana's documents and mappings), ``plan`` (which items become query
clauses, which are applied after each page, which cannot be applied), ``clauses`` (the query clause of a
list entry), ``postfilter`` (the per-page lookup and filter). I/O: ``store`` (reads and writes the
indices).
"""
