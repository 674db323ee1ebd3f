"""New-terms rules (Kibana's ``siem.newTermsRule``): the rule type (``rule_type``), one run (``execute``: the
pages of new terms, their alerts through the shared writer), and its pure parts: the three searches of a page
(``phases``), the pages of one window with the search injected and the alerts' ids (``pages``), the history
window (``history``), and the groups of Kibana's suppression (``suppression``; not run yet: ``validate``
refuses a new-terms rule with ``alert_suppression``)."""
