"""Threshold rules (Kibana's ``siem.thresholdRule``): the rule type (``rule_type``), one run (``execute``: the
history, the groups, their alerts through the shared writer, or with a suppression duration through the shared
suppressing writer), and its pure parts: the search and its pages (``search``), the alerts of the groups and
their ids (``alerts``), the signal history (``history``)."""
