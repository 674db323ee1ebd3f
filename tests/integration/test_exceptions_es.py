"""Exception filters on the real node: excepted events give no hits, every other event still does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from job.backends import translate_rule_query
from job.config.settings import SHIPPED_RULES_DIR
from job.rules import ExceptionItem, build_exception_filter, load_rule, load_rules

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SEED = SHIPPED_RULES_DIR / "credential_access_endgame_cred_dumping_detected.toml"

KEYWORD = {"type": "keyword"}
MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"kind": KEYWORD, "module": KEYWORD, "action": KEYWORD}},
        "endgame": {"properties": {"metadata": {"properties": {"type": KEYWORD}}, "event_subtype_full": KEYWORD}},
        "user": {"properties": {"name": KEYWORD}},
        "host": {
            "properties": {
                "name": KEYWORD,
                "os": {"properties": {"type": KEYWORD, "name": {"type": "keyword", "fields": {"caseless": KEYWORD}}}},
            }
        },
        "process": {
            "properties": {
                "name": KEYWORD,
                "executable": KEYWORD,
                "code_signature": {"properties": {"trusted": {"type": "boolean"}}},
                "Ext": {
                    "properties": {
                        "code_signature": {
                            "type": "nested",
                            "properties": {"subject_name": KEYWORD, "status": KEYWORD, "trusted": {"type": "boolean"}},
                        }
                    }
                },
            }
        },
    }
}


def _event(user: str, process: str, executable: str, host: str, **extra: Any) -> dict[str, Any]:
    return {
        "@timestamp": "2026-03-01T00:00:00Z",
        "event": {"kind": "alert", "module": "endgame", "action": "cred_theft_event"},
        "endgame": {"metadata": {"type": "detection"}, "event_subtype_full": "cred_theft_event"},
        "user": {"name": user},
        "host": {"name": host, "os": extra.pop("os", {"type": "windows", "name": "Windows"})},
        "process": {"name": process, "executable": executable, **extra},
    }


MICROSOFT = {"subject_name": "Microsoft Corporation", "status": "trusted", "trusted": True}
UNKNOWN = {"subject_name": "Unknown Ltd", "status": "errorExpired"}
EVENTS = {
    "admin": _event(
        "svc-admin",
        "procdump.exe",
        "C:\\Tools\\procdump.exe",
        "win-01",
        code_signature={"trusted": True},
        Ext={"code_signature": [MICROSOFT]},
    ),
    "alice": _event("alice", "procdump.exe", "C:\\Tools\\procdump.exe", "win-02"),
    "bob": _event("bob", "mimikatz.exe", "C:\\Users\\bob\\m.exe", "win-02", Ext={"code_signature": [UNKNOWN]}),
    "linux": _event("svc-backup", "backup", "/opt/backup", "lin-01", os={"type": "linux", "name": "Linux"}),
    # Endgame and Endpoint agents spell the OS in host.os.name (searched through host.os.name.caseless).
    "caseless": _event("svc-backup", "backup", "/opt/backup", "lin-02", os={"name": "linux"}),
    "windows_backup": _event("svc-backup", "backup", "C:\\Backup\\backup", "win-03"),
    # Not an Endgame detection: the rule's query never selects it.
    "not_alert": {
        **_event("svc-admin", "procdump.exe", "C:\\Tools\\procdump.exe", "win-01"),
        "event": {"kind": "event"},
    },
}
SELECTED = set(EVENTS) - {"not_alert"}


@pytest.fixture(scope="module")
def endgame_index(es: Elasticsearch) -> Iterator[str]:
    index = f"test-exceptions-{uuid.uuid4().hex[:12]}"
    es.indices.create(index=index, mappings=MAPPING)
    helpers.bulk(es, ({"_index": index, "_id": key, "_source": doc} for key, doc in EVENTS.items()), refresh=True)
    yield index
    es.indices.delete(index=index)


def _hits(es: Elasticsearch, index: str, must_not: dict[str, Any] | None) -> set[str]:
    query: dict[str, Any] = {"bool": {"filter": [translate_rule_query(load_rule(SEED))]}}
    if must_not is not None:
        query["bool"]["must_not"] = [must_not]
    response = es.search(index=index, query=query, size=100)
    return {hit["_id"] for hit in response["hits"]["hits"]}


def _entry(field: str, kind: str, value: Any = None, operator: str = "included", **extra: Any) -> dict[str, Any]:
    entry = {"field": field, "type": kind, "operator": operator, **extra}
    return entry if value is None else {**entry, "value": value}


ADMIN = _entry("user.name", "match", "svc-admin")
BACKUP = _entry("process.name", "match", "backup")

CASES: list[tuple[str, list[dict[str, Any]], set[str]]] = [
    # (case, items as {"entries": [...], ...}, events excepted)
    ("no_items", [], set()),
    ("admin_account", [{"entries": [ADMIN]}], {"admin"}),
    (
        "match_excluded",
        [
            {
                "entries": [
                    _entry("process.name", "match", "procdump.exe"),
                    _entry("user.name", "match", "alice", "excluded"),
                ]
            }
        ],
        {"admin"},
    ),
    ("match_any", [{"entries": [_entry("user.name", "match_any", ["alice", "bob"])]}], {"alice", "bob"}),
    (
        "match_any_excluded",
        [{"entries": [_entry("user.name", "match_any", ["svc-admin", "svc-backup"], "excluded")]}],
        {"alice", "bob"},
    ),
    # Wildcard values are Elasticsearch wildcard patterns: a backslash escapes, so a path's \ is written \\.
    ("wildcard", [{"entries": [_entry("process.executable", "wildcard", "C:\\\\Tools\\\\*")]}], {"admin", "alice"}),
    (
        "wildcard_excluded",
        [{"entries": [BACKUP, _entry("host.name", "wildcard", "lin-*", "excluded")]}],
        {"windows_backup"},
    ),
    ("exists", [{"entries": [_entry("process.code_signature.trusted", "exists")]}], {"admin"}),
    (
        "exists_excluded",
        [
            {
                "entries": [
                    _entry("process.name", "match", "procdump.exe"),
                    _entry("process.code_signature.trusted", "exists", operator="excluded"),
                ]
            }
        ],
        {"alice"},
    ),
    (
        "nested",
        [
            {
                "entries": [
                    _entry(
                        "process.Ext.code_signature",
                        "nested",
                        entries=[
                            _entry("subject_name", "match", "Microsoft Corporation"),
                            _entry("trusted", "exists"),
                        ],
                    )
                ]
            }
        ],
        {"admin"},
    ),
    (
        "nested_excluded_sub_entry",
        [
            {
                "entries": [
                    _entry(
                        "process.Ext.code_signature",
                        "nested",
                        entries=[
                            _entry("status", "match_any", ["trusted", "errorExpired"]),
                            _entry("subject_name", "match", "Microsoft Corporation", "excluded"),
                        ],
                    )
                ]
            }
        ],
        {"bob"},
    ),
    ("os_types", [{"entries": [BACKUP], "os_types": ["linux"]}], {"linux", "caseless"}),
    (
        "os_types_two",
        [{"entries": [BACKUP], "os_types": ["linux", "windows"]}],
        {"linux", "caseless", "windows_backup"},
    ),
    ("any_item", [{"entries": [ADMIN]}, {"entries": [_entry("user.name", "match", "bob")]}], {"admin", "bob"}),
    ("expired_item_skipped", [{"entries": [ADMIN], "expire_time": "2026-02-28T23:59:59Z"}], set()),
    ("unexpired_item", [{"entries": [ADMIN], "expire_time": "2026-03-01T00:00:01Z"}], {"admin"}),
]


@pytest.mark.parametrize(("case", "items", "excepted"), CASES, ids=[c[0] for c in CASES])
def test_exception_filter_on_elasticsearch(
    es: Elasticsearch, endgame_index: str, case: str, items: list[dict[str, Any]], excepted: set[str]
) -> None:
    models = [ExceptionItem.model_validate({"item_id": f"{case}-{n}", **item}) for n, item in enumerate(items)]
    clause, expired = build_exception_filter(models, now=NOW)
    assert _hits(es, endgame_index, clause) == SELECTED - excepted
    assert [item.item_id for item in expired] == [m.item_id for m in models if m.expire_time and m.expire_time < NOW]


INLINE_ADMIN = """
[[rule.exceptions]]
item_id = "admin-tooling"
name = "Admin tooling service account"

[[rule.exceptions.entries]]
field = "user.name"
type = "match"
value = "svc-admin"

[[rule.exceptions_list]]
list_id = "backup-jobs"
namespace_type = "single"
type = "detection"
"""

BACKUP_LIST = """\
list_id = "backup-jobs"
name = "Backup jobs"

[[items]]
item_id = "linux-backup"
os_types = ["linux"]

[[items.entries]]
field = "process.name"
type = "match"
value = "backup"

[[items]]
item_id = "old-windows-backup"
expire_time = 2026-01-01T00:00:00Z

[[items.entries]]
field = "host.name"
type = "match"
value = "win-03"
"""


def test_rule_file_exceptions_end_to_end(es: Elasticsearch, endgame_index: str, tmp_path: Path) -> None:
    (tmp_path / "exceptions").mkdir()
    (tmp_path / "exceptions" / "backup-jobs.toml").write_text(BACKUP_LIST)
    (tmp_path / SEED.name).write_text(SEED.read_text() + INLINE_ADMIN)
    result = load_rules([tmp_path])
    assert result.problems == ()
    (rule,) = result.rules
    clause, expired = build_exception_filter(rule.exceptions, now=NOW)
    assert [item.item_id for item in expired] == ["old-windows-backup"]
    assert _hits(es, endgame_index, clause) == SELECTED - {"admin", "linux", "caseless"}
