"""Field types shared by the EQL unit tests (the shape ``job.client.fieldcaps.field_types_from_caps`` returns)."""

from __future__ import annotations

FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "event.category": "keyword",
    "event.type": "keyword",
    "process.name": "keyword",
    "process.pid": "long",
    "process.args_count": "integer",
    "score": "double",
    "message": "text",
    "message.keyword": "keyword",
    "title": "text",
    "source.ip": "ip",
    "user.name": "keyword",
    "host.id": "keyword",
    "file.path": "keyword",
    "is_admin": "boolean",
    "host": "object",
    "tags": "nested",
    "tags.key": "keyword",
    "geo": "geo_point",
    "mixed": "keyword,text",
    "ck": "constant_keyword,keyword",
    "sequence": "long",
}
