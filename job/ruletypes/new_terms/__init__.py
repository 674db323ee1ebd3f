"""New-terms rules (Kibana's ``siem.newTermsRule``): the rule type (``rule_type``), one run (``execute``: the
pages of new terms, their alerts through the shared writer, or with ``alert_suppression`` through the shared
suppressing writer), and its pure parts: the three searches of a page (``phases``), the pages of one window with
the search injected and the alerts' ids (``pages``), the history window (``history``), and the groups of
Kibana's suppression (``suppression``)."""
