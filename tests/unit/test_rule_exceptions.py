"""Exception items into one must_not clause: the per-entry shapes of Kibana's filter builder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from job.rules import ExceptionEntry, ExceptionItem, build_exception_filter
from job.rules.exceptions import entry_clause, item_clauses

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _match(field: str, value: str) -> dict[str, Any]:
    return {"bool": {"should": [{"match_phrase": {field: value}}], "minimum_should_match": 1}}


def _not(clause: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must_not": clause}}


WILDCARD = {"bool": {"filter": {"wildcard": {"process.executable": "C:\\Tools\\*"}}}}
EXISTS = {"bool": {"should": [{"exists": {"field": "process.code_signature.trusted"}}], "minimum_should_match": 1}}
ANY = {
    "bool": {
        "should": [{"match_phrase": {"user.name": "a"}}, {"match_phrase": {"user.name": "b"}}],
        "minimum_should_match": 1,
    }
}


@pytest.mark.parametrize(
    ("entry", "clause"),
    [
        ({"field": "user.name", "type": "match", "value": "svc"}, _match("user.name", "svc")),
        (
            {"field": "user.name", "type": "match", "value": "svc", "operator": "excluded"},
            _not(_match("user.name", "svc")),
        ),
        ({"field": "user.name", "type": "match_any", "value": ["a", "b"]}, ANY),
        ({"field": "user.name", "type": "match_any", "value": ["a", "b"], "operator": "excluded"}, _not(ANY)),
        ({"field": "process.executable", "type": "wildcard", "value": "C:\\Tools\\*"}, WILDCARD),
        (
            {"field": "process.executable", "type": "wildcard", "value": "C:\\Tools\\*", "operator": "excluded"},
            _not(WILDCARD),
        ),
        ({"field": "process.code_signature.trusted", "type": "exists"}, EXISTS),
        ({"field": "process.code_signature.trusted", "type": "exists", "operator": "excluded"}, _not(EXISTS)),
        (
            {
                "field": "process.Ext.code_signature",
                "type": "nested",
                "entries": [{"field": "subject_name", "type": "match", "value": "Microsoft"}],
            },
            {
                "nested": {
                    "path": "process.Ext.code_signature",
                    "query": _match("process.Ext.code_signature.subject_name", "Microsoft"),
                    "score_mode": "none",
                }
            },
        ),
        (
            {
                "field": "process.Ext.code_signature",
                "type": "nested",
                "entries": [
                    {"field": "subject_name", "type": "match", "value": "Microsoft"},
                    {"field": "trusted", "type": "exists", "operator": "excluded"},
                ],
            },
            {
                "nested": {
                    "path": "process.Ext.code_signature",
                    "query": {
                        "bool": {
                            "filter": [
                                _match("process.Ext.code_signature.subject_name", "Microsoft"),
                                _not(
                                    {
                                        "bool": {
                                            "should": [{"exists": {"field": "process.Ext.code_signature.trusted"}}],
                                            "minimum_should_match": 1,
                                        }
                                    }
                                ),
                            ]
                        }
                    },
                    "score_mode": "none",
                }
            },
        ),
    ],
)
def test_entry_clause(entry: dict[str, Any], clause: dict[str, Any]) -> None:
    assert entry_clause(ExceptionEntry.model_validate(entry)) == clause


def _item(item_id: str, *entries: dict[str, Any], **extra: Any) -> ExceptionItem:
    return ExceptionItem.model_validate({"item_id": item_id, "entries": list(entries), **extra})


ADMIN = {"field": "user.name", "type": "match", "value": "svc-admin"}
TOOL = {"field": "process.name", "type": "match", "value": "procdump.exe"}


def test_one_entry_item_is_that_entry_and_several_are_anded() -> None:
    assert item_clauses(_item("a", ADMIN)) == [_match("user.name", "svc-admin")]
    assert item_clauses(_item("b", ADMIN, TOOL)) == [
        {"bool": {"filter": [_match("user.name", "svc-admin"), _match("process.name", "procdump.exe")]}}
    ]


def test_os_types_expand_to_host_os_type_then_caseless_branches() -> None:
    branches = item_clauses(_item("a", TOOL, os_types=["windows", "linux"]))
    tool = _match("process.name", "procdump.exe")
    assert branches == [
        {"bool": {"filter": [_match("host.os.type", "windows"), tool]}},
        {"bool": {"filter": [_match("host.os.type", "linux"), tool]}},
        {"bool": {"filter": [_match("host.os.name.caseless", "windows"), tool]}},
        {"bool": {"filter": [_match("host.os.name.caseless", "linux"), tool]}},
    ]


def test_items_are_ored_in_one_clause() -> None:
    clause, expired = build_exception_filter([_item("a", ADMIN), _item("b", TOOL)], now=NOW)
    assert clause == {"bool": {"should": [_match("user.name", "svc-admin"), _match("process.name", "procdump.exe")]}}
    assert expired == ()


@pytest.mark.parametrize(
    ("expire_time", "active"),
    [
        (None, True),
        (NOW + timedelta(seconds=1), True),
        (NOW, True),  # Kibana drops an item only when expire_time < now
        (NOW - timedelta(milliseconds=1), False),
        (datetime(2025, 1, 1), False),  # no offset: UTC
    ],
)
def test_expired_items_are_skipped_and_returned(expire_time: datetime | None, active: bool) -> None:
    item = _item("old", ADMIN, expire_time=expire_time)
    clause, expired = build_exception_filter([item, _item("other", TOOL)], now=NOW)
    assert clause is not None
    assert (len(clause["bool"]["should"]) == 2) == active
    assert expired == (() if active else (item,))


def test_no_active_item_gives_no_clause() -> None:
    assert build_exception_filter([], now=NOW) == (None, ())
    item = _item("old", ADMIN, expire_time=NOW - timedelta(days=1))
    assert build_exception_filter([item], now=NOW) == (None, (item,))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"field": "f", "type": "list"}, "a list entry needs list ="),
        ({"field": "f", "type": "list", "list": {"id": "ips"}}, "a list entry needs list ="),
        ({"field": "f", "type": "list", "list": {"id": "ips", "type": "ip"}, "value": "x"}, "takes no value"),
        ({"field": "f", "type": "list", "list": {"id": "ips", "type": "double"}}, "input should be"),
        ({"field": "f", "type": "match", "value": "a", "list": {"id": "ips", "type": "ip"}}, "takes no list"),
        (
            {
                "field": "f",
                "type": "nested",
                "entries": [{"field": "g", "type": "list", "list": {"id": "i", "type": "ip"}}],
            },
            "must be match, match_any or exists",
        ),
        ({"field": "f", "type": "match"}, "needs a non-empty string value"),
        ({"field": "f", "type": "match", "value": ["a"]}, "needs a non-empty string value"),
        ({"field": "f", "type": "wildcard", "value": ""}, "needs a non-empty string value"),
        ({"field": "f", "type": "match_any", "value": "a"}, "non-empty list"),
        ({"field": "f", "type": "match_any", "value": []}, "non-empty list"),
        ({"field": "f", "type": "exists", "value": "a"}, "takes no value"),
        ({"field": "f", "type": "nested", "entries": []}, "needs sub-entries"),
        ({"field": "f", "type": "nested", "operator": "excluded", "entries": [TOOL]}, "takes no operator"),
        (
            {"field": "f", "type": "nested", "entries": [{"field": "g", "type": "wildcard", "value": "x*"}]},
            "must be match, match_any or exists",
        ),
        ({"field": "f", "type": "match", "value": "a", "entries": [TOOL]}, "takes no sub-entries"),
        ({"field": "f", "type": "regex", "value": "a"}, "input should be"),
        ({"field": "f", "type": "match", "value": "a", "operator": "is"}, "input should be"),
    ],
)
def test_malformed_entries_are_refused(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ExceptionEntry.model_validate(entry)
    assert message.lower() in str(caught.value).lower()


def test_kibana_comment_objects_become_texts() -> None:
    item = _item("a", ADMIN, comments=[{"comment": "approved"}, "plain"])
    assert item.comments == ("approved", "plain")
