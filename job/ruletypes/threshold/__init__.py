"""Threshold rules (Kibana's ``siem.thresholdRule``), the pure parts: the search and its pages (``search``), the
alerts of the buckets (``alerts``), the signal history (``history``) and one window with the search injected
(``execute``)."""
