"""JSON in and out of Elasticsearch for documents that may be hostile.

* Depth. Elasticsearch accepts documents nested up to 1,000 levels (objects and arrays). Python's
  ``json`` C code counts each level against the interpreter's recursion limit (1,000 by default on
  Python 3.11), so a page holding such an event could not be decoded, nor its alert encoded.
  :func:`allow_deep_documents` raises the limit once at start to :data:`RECURSION_LIMIT`, enough for
  the deepest document plus the response around it; on Python 3.12+ the C code has its own, higher
  limit. Everything in the job that walks an event is iterative and does not need it.
* Bytes. Elasticsearch keeps ``_source`` as it was sent, and accepts some byte sequences that are not
  valid UTF-8 (an overlong ``C0 80``, encoded surrogates). A response holding one cannot be decoded
  strictly: :class:`TolerantJsonSerializer` then decodes it with ``surrogateescape``, keeping each
  invalid byte as a lone surrogate instead of failing the whole page.
* Out: every request body is ASCII (``ensure_ascii``), so a lone surrogate in a value is sent as a
  ``\\udXXX`` escape, which Elasticsearch accepts, never as invalid UTF-8. Alerts are serialized one by
  one (:func:`document_bytes`), so one that cannot be is that event's problem alone.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

RECURSION_LIMIT = 4000


def allow_deep_documents() -> None:
    """Let the ``json`` C code decode and encode documents as deep as Elasticsearch accepts."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


def document_bytes(document: Any) -> bytes:
    """Compact ASCII JSON; raises ``ValueError`` for non-finite numbers, ``RecursionError`` past the depth
    limit, ``TypeError`` for values that are not JSON."""
    return json.dumps(document, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        return json.loads(data.decode("utf-8", "surrogateescape"))


class TolerantJsonSerializer(JsonSerializer):
    """The client's JSON serializer, made to survive the bytes an event can carry."""

    def json_loads(self, data: bytes) -> Any:
        return _loads(data)

    def json_dumps(self, data: Any) -> bytes:
        return json.dumps(data, default=self.default, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class TolerantNdjsonSerializer(NdjsonSerializer):
    """The same for bulk bodies (lines given as bytes are sent as they are)."""

    def json_loads(self, data: bytes) -> Any:
        return _loads(data)

    def json_dumps(self, data: Any) -> bytes:
        return json.dumps(data, default=self.default, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def client_serializers() -> dict[str, JsonSerializer]:
    """The ``serializers`` option of the Elasticsearch client."""
    return {
        TolerantJsonSerializer.mimetype: TolerantJsonSerializer(),
        TolerantNdjsonSerializer.mimetype: TolerantNdjsonSerializer(),
    }
