"""New-terms rules (Kibana's ``siem.newTermsRule``), the pure parts: the three searches of a page (``phases``),
the pages of one window with the search injected and the alerts' ids (``execute``), and suppression
(``suppression``)."""
