"""field_types_from_caps: a _field_caps response -> the field map the KQL translator takes."""

from __future__ import annotations

from typing import Any

import pytest

from job.client.fieldcaps import field_types_from_caps


def _cap(kind: str, **extra: Any) -> dict[str, Any]:
    return {kind: {"type": kind, "metadata_field": False, "searchable": True, "aggregatable": True, **extra}}


RESPONSE: dict[str, Any] = {
    "indices": ["logs-a", "logs-b"],
    "fields": {
        "_id": {"_id": {"type": "_id", "metadata_field": True, "searchable": True, "aggregatable": False}},
        "_index": {"_index": {"type": "_index", "metadata_field": True, "searchable": True, "aggregatable": True}},
        "@timestamp": _cap("date"),
        "event.created": _cap("date_nanos"),
        "host": _cap("object"),
        "host.name": _cap("keyword"),
        "message": _cap("text"),
        "message.keyword": _cap("keyword"),
        "user.name": {**_cap("keyword", indices=["logs-a"]), **_cap("text", indices=["logs-b"])},
        "tags": _cap("nested"),
        "tags.key": _cap("keyword"),
        "partly": {**_cap("long"), "unmapped": {"type": "unmapped", "metadata_field": False}},
    },
}


def test_field_types_from_caps() -> None:
    assert field_types_from_caps(RESPONSE) == {
        "@timestamp": "date",
        "event.created": "date_nanos",
        "host.name": "keyword",
        "message": "text",
        "message.keyword": "keyword",
        "user.name": "keyword,text",
        "tags": "nested",
        "tags.key": "keyword",
        "partly": "long",
    }


def test_empty_response() -> None:
    assert field_types_from_caps({"indices": [], "fields": {}}) == {}


@pytest.mark.parametrize("response", [{}, {"fields": []}, {"fields": {"a": "keyword"}}])
def test_not_a_field_caps_response(response: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a _field_caps response"):
        field_types_from_caps(response)
