"""The alert id: one alert per (source document, rule, space), stable across runs and versions.

Kibana hashes the separator-less concatenation ``index + id + "undefined" + "<space>:<rule saved-object id>"``.
We deliberately differ in two ways:

* the parts are hashed as a JSON array, so no two different inputs can concatenate to the same text
  (Kibana's ``"ab" + "c"`` and ``"a" + "bc"`` collide);
* the rule is identified by its ``rule_id`` (the signature id in the rule file): there is no Kibana saved
  object, and the ``rule_id`` is what stays the same when a rule file is edited or re-imported.

The scheme is fixed: changing it would make every later run re-alert on events already alerted on.
"""

from __future__ import annotations

import hashlib
import json


def alert_id(index: str, doc_id: str, rule_id: str, space_id: str) -> str:
    """Lowercase hex SHA-256 of the compact JSON array ``[index, doc_id, rule_id, space_id]`` (UTF-8).

    ``index`` is the concrete index of the source hit (``hit["_index"]``), ``doc_id`` its ``_id``.
    """
    key = json.dumps([index, doc_id, rule_id, space_id], separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate (an invalid byte kept by the tolerant decoder) cannot fail the id;
    # every id of valid text is unchanged.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
