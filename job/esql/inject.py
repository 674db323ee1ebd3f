"""Kibana 9.4+: ``METADATA _id`` added to a non-aggregating query before it runs (pure).

From 9.4 a non-aggregating ES|QL rule no longer has to name ``_id`` in ``FROM ... METADATA``: the executor
adds it (Kibana's ``injectMetadataId``) and, best effort, appends ``_id`` to every ``KEEP`` so the column
survives the pipeline. Walking the commands in order, the ``KEEP`` fix-ups stop at the first command after
which ``_id`` may no longer be the event's: a ``DROP`` of ``_id`` or of any wildcard, a ``RENAME`` of
``_id``, an ``EVAL`` assigning ``_id``, a ``DISSECT`` or a ``GROK``. The saved query is never changed; when
the rewritten query fails the syntax check the original one runs and the reason is kept for the warning.
8.19 and 9.0-9.3 run the query as saved: this module is for a 9.4+ cluster only.

Kibana prints the rewritten query from its syntax tree; this rewrite edits the text in place instead (the
same commands and arguments, the original spacing), which Elasticsearch reads the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from job.esql.text import (
    Command,
    QueryTextError,
    has_metadata_id,
    is_aggregating,
    metadata_fields,
    metadata_keyword,
    split_commands,
)

# Kibana's save-time error (``parse_esql_query.ts``) for a non-aggregating query without ``METADATA _id``.
METADATA_ID_REQUIRED = (
    "Queries that don\u2019t use the STATS...BY function (non-aggregating queries) must include the "
    '"metadata _id, _version, _index" operator after the source command. For example: FROM logs* metadata _id, '
    "_version, _index."
)


@dataclass(frozen=True, slots=True)
class Injection:
    """The query to run, and why ``_id`` could not be injected (None when it was, or was already there)."""

    query: str
    failure: str | None = None


def _args(command: Command) -> list[str]:
    """The command's comma-separated arguments (after its keyword), comments removed, stripped."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", command.text, flags=re.DOTALL).strip()
    text = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
    return [part.strip() for part in text.split(",") if part.strip()]


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1].replace("``", "`") if len(name) >= 2 and name[0] == name[-1] == "`" else name


def _assigns_id(argument: str, *, rename: bool) -> bool:
    """``_id = ...`` (EVAL, or RENAME's new form), and for RENAME also ``_id AS ...``."""
    found = re.match(r"(`[^`]*`|[^\s=]+)\s*(=|\bAS\b)", argument, re.IGNORECASE)
    if found is None or _unquote(found.group(1)) != "_id":
        return False
    return found.group(2) == "=" or rename


def _stops_keep_fixups(command: Command) -> bool:
    name = command.name
    if name == "drop":
        return any(_unquote(arg) == "_id" or "*" in arg for arg in _args(command))
    if name in ("rename", "eval"):
        return any(_assigns_id(arg, rename=name == "rename") for arg in _args(command))
    return name in ("dissect", "grok")


def _insertions(query: str, commands: list[Command]) -> list[tuple[int, str]]:
    source = commands[0]
    inserts: list[tuple[int, str]] = []
    if metadata_keyword(source.text) is None:
        inserts.append((source.content_end, " METADATA _id"))
    elif "_id" not in metadata_fields(query):
        inserts.append((source.content_end, ", _id"))
    if any(command.name == "keep" for command in commands):
        for command in commands[1:]:
            if _stops_keep_fixups(command):
                break
            if command.name == "keep" and "_id" not in [_unquote(arg) for arg in _args(command)]:
                inserts.append((command.content_end, ", _id"))
    return inserts


def inject_metadata_id(query: str) -> Injection:
    """The query a 9.4+ executor runs for a rule whose saved query is ``query``."""
    try:
        if is_aggregating(query):
            return Injection(query)
        commands = split_commands(query)
    except QueryTextError as exc:
        return Injection(query, f"the query could not be read: {exc}")
    if not commands or commands[0].name != "from":
        return Injection(query, "the query has no FROM source command")
    if "[" in commands[0].text:
        return Injection(query, "the FROM command uses the bracketed METADATA form")
    rewritten = query
    for offset, text in sorted(_insertions(query, commands), reverse=True):
        rewritten = rewritten[:offset] + text + rewritten[offset:]
    try:  # the syntax check Kibana runs on its rewrite: here, that the rewrite still scans
        split_commands(rewritten)
    except QueryTextError as exc:
        return Injection(query, f"the rewritten query could not be read: {exc}")
    return Injection(rewritten)


def metadata_id_problem(query: str, *, injects: bool) -> str | None:
    """Kibana's save-time check of a rule query (``parse_esql_query.ts``): before 9.4 (``injects`` False) a
    non-aggregating query must name ``_id`` in FROM's METADATA (only ``_id`` is checked), else this error;
    from 9.4 the executor injects it and a missing ``_id`` is no error. QueryTextError if unreadable."""
    if injects or is_aggregating(query) or has_metadata_id(query):
        return None
    return METADATA_ID_REQUIRED


def query_to_run(query: str, *, injects: bool) -> Injection:
    """The query an executor sends for the saved ``query``: unchanged on 8.19 and 9.0-9.3, injected on 9.4+."""
    return inject_metadata_id(query) if injects else Injection(query)
